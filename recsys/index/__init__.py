"""One retrieval index for every embedding model: :class:`ItemIndex` (exact or faiss ANN).

Self-contained (numpy, scipy and faiss only): models hand it their item vectors and query
it with user vectors, exclusions and candidate restrictions.
"""

from recsys._utils.registry import StateCodec, register_codec
from recsys.index._index import ItemIndex

# How artifacts store an index: its config and the arrays it is rebuilt from.
register_codec(StateCodec(
    "__itemindex__", ItemIndex, "arrays", lambda ix: ix.get_config(), lambda ix: ix.to_arrays(), ItemIndex.from_arrays, "an item index"
))

__all__ = ["ItemIndex"]
