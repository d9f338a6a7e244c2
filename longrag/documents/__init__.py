"""Files → Documents (loaders by type) → Segments (token-aware, with character offsets)."""
from .loaders import SUPPORTED_SUFFIXES, discover, load_file
from .segmenter import segment_document

__all__ = ["SUPPORTED_SUFFIXES", "discover", "load_file", "segment_document"]
