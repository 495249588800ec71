"""cache: compiled artifacts and tuning records on disk (diskcache), keyed by ``CacheKey``."""

from .artifact import Artifact
from .key import SCHEMA_VERSION, CacheKey
from .store import CacheWarning, Store, open_store

__all__ = ["SCHEMA_VERSION", "Artifact", "CacheKey", "CacheWarning", "Store", "open_store"]
