"""Index directory: FAISS vectors + SQLite document store + manifest.json, written atomically."""
from .store import IndexStore, list_indexes, resolve_index_dir
from .writer import IndexWriter

__all__ = ["IndexStore", "IndexWriter", "list_indexes", "resolve_index_dir"]
