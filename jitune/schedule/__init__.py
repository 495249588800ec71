"""schedule: compute IR + Target -> loop IR. ``default`` holds the untuned schedule."""

from .default import schedule

__all__ = ["schedule"]
