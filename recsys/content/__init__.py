"""Content side of recsys: item texts, text encoders and the on-disk embedding cache.

Encoders share one small interface, :class:`TextEncoder`: ``fit(texts)`` where
they learn from a corpus, then ``encode(texts) -> float32 array``.

- :class:`HashingEncoder`: hashed, idf-weighted bag of words (numpy only).
- :class:`Doc2VecEncoder`: paragraph vectors trained with gensim.
- :class:`BertEncoder`: pre-trained sentence-transformers models, batched, on
  the GPU when there is one, cached on disk (:class:`EmbeddingCache`).

gensim and sentence-transformers come with ``pip install "recsys[content]"``;
without them everything else in recsys works, and building the encoder that
needs one raises :class:`MissingDependencyError` naming the extra. Nothing
here imports them until an encoder is fitted or used.

The recommenders built on these are :class:`recsys.models.ContentBased` and
:class:`recsys.models.Hybrid`.
"""

from recsys.content._base import TextEncoder
from recsys.content._bert import BertEncoder
from recsys.content._cache import EmbeddingCache, default_cache_dir
from recsys.content._doc2vec import Doc2VecEncoder
from recsys.content._hashing import HashingEncoder, tokenize
from recsys.content._text import item_texts
from recsys.errors import MissingDependencyError

__all__ = [
    "BertEncoder",
    "Doc2VecEncoder",
    "EmbeddingCache",
    "HashingEncoder",
    "MissingDependencyError",
    "TextEncoder",
    "default_cache_dir",
    "item_texts",
    "tokenize",
]
