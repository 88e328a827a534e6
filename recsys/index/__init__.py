"""One retrieval index for every embedding model: :class:`ItemIndex` (exact or faiss ANN).

Self-contained (numpy, scipy and faiss only): models hand it their item vectors and query
it with user vectors, exclusions and candidate restrictions. Its parameters are checked in
``_params.py``, its artifact form is read and written in ``_serial.py``.
"""

from recsys._utils.registry import register_codec
from recsys.index._index import ItemIndex
from recsys.index._serial import index_codec

register_codec(index_codec(ItemIndex))

__all__ = ["ItemIndex"]
