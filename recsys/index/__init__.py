"""One retrieval index for every embedding model: :class:`ItemIndex` (exact or faiss ANN).

Self-contained (numpy, scipy and faiss only): models hand it their item vectors and query
it with user vectors, exclusions and candidate restrictions.
"""

from recsys.index._index import ItemIndex

__all__ = ["ItemIndex"]
