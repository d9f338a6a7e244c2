"""longrag: long-document retrieval and retrieval-augmented generation."""
from .config import Config, load_config
from .indexing import IndexReport
from .pipeline import Pipeline
from .types import Document, Hit, Segment, Skipped

__all__ = ["Pipeline", "IndexReport", "Config", "load_config", "Document", "Segment", "Hit", "Skipped"]
