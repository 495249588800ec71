"""lower: graph IR + input layouts -> compute IR (stages), fusing as it goes."""

from .fuse import lower

__all__ = ["lower"]
