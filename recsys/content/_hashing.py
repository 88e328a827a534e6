"""A dependency-free encoder: hashed bag of words with idf weights (numpy only)."""

from __future__ import annotations

import re
import zlib

import numpy as np
import scipy.sparse as sp
from numpy.typing import NDArray

from recsys._utils.params import check_int
from recsys.content._base import TextEncoder
from recsys.errors import ParameterError

_TOKEN = re.compile(r"\w+")


def tokenize(text: str) -> list[str]:
    """Lower-cased word tokens (letters, digits and underscores), punctuation dropped.

    >>> tokenize("Children's Film-Noir (1995)")
    ['children', 's', 'film', 'noir', '1995']
    """
    return _TOKEN.findall(text.lower())


class HashingEncoder(TextEncoder):
    """Hashed bag of words (feature hashing), idf-weighted and L2-normalised.

    Each token lands in bucket ``crc32(token) mod dim`` with a sign from a
    second hash bit (so collisions cancel on average instead of adding up).
    With ``idf=True`` ``fit`` learns ``log((1 + n) / (1 + df)) + 1`` per bucket
    from the corpus. Deterministic across processes and platforms; a cheap
    baseline and a stand-in when the ``content`` extra is not installed.

    Parameters
    ----------
    dim : int, default 1024
        Number of buckets (vector length).
    idf : bool, default True
        Weight buckets by inverse document frequency (learned by ``fit``).
    ngrams : int, default 1
        Also hash word n-grams up to this length.

    Examples
    --------
    >>> enc = HashingEncoder(dim=64).fit(["space alien", "love story", "alien love"])
    >>> v = enc.encode(["space alien", ""])
    >>> v.shape, round(float(v[0] @ v[0]), 4), float(abs(v[1]).sum())
    ((2, 64), 1.0, 0.0)
    """

    def __init__(self, dim: int = 1024, idf: bool = True, ngrams: int = 1) -> None:
        self.dim = dim
        self.idf = idf
        self.ngrams = ngrams

    @property
    def embedding_dim(self) -> int:
        return int(self.dim)

    @property
    def is_fitted(self) -> bool:
        return not self.idf or hasattr(self, "idf_")

    def _validate_params(self) -> None:
        check_int("HashingEncoder", "dim", self.dim, low=1)
        check_int("HashingEncoder", "ngrams", self.ngrams, low=1)
        if not isinstance(self.idf, bool):
            raise ParameterError(f"The 'idf' parameter of HashingEncoder must be a bool. Got {self.idf!r} instead.")

    def _counts(self, texts: list[str]) -> sp.csr_matrix:
        rows, cols, vals = [], [], []
        for r, t in enumerate(texts):
            toks = tokenize(t)
            grams = [" ".join(toks[i : i + n]) for n in range(1, self.ngrams + 1) for i in range(len(toks) - n + 1)]
            for g in grams:
                h = zlib.crc32(g.encode("utf-8"))
                rows.append(r)
                cols.append(h % self.dim)
                vals.append(1.0 if (h >> 31) & 1 == 0 else -1.0)
        return sp.csr_matrix(
            (np.asarray(vals, dtype=np.float32), (np.asarray(rows, dtype=np.int64), np.asarray(cols, dtype=np.int64))),
            shape=(len(texts), self.dim),
        )

    def _fit(self, texts: list[str]) -> None:
        if not self.idf:
            return
        m = self._counts(texts)
        m.sum_duplicates()
        df = np.bincount(m.indices[m.data != 0], minlength=self.dim).astype(np.float64)
        self.idf_ = (np.log((1.0 + len(texts)) / (1.0 + df)) + 1.0).astype(np.float32)

    def _encode(self, texts: list[str], show_progress: bool | None) -> NDArray[np.float32]:
        m = self._counts(texts)
        m.sum_duplicates()
        x = m.toarray()
        if self.idf:
            x *= self.idf_
        norms = np.linalg.norm(x, axis=1, keepdims=True)
        return np.divide(x, norms, out=np.zeros_like(x), where=norms > 0).astype(np.float32)


__all__ = ["HashingEncoder", "tokenize"]
