"""Index directory: immutable shards (documents, vectors, vector indexes, BM25 counts) listed by generations, published atomically."""
from .store import IndexStore, list_indexes, resolve_index_dir
from .writer import IndexWriter

__all__ = ["IndexStore", "IndexWriter", "list_indexes", "resolve_index_dir"]
