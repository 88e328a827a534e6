"""Argument checks of :class:`recsys.index.ItemIndex`; each message names the argument, what was expected and what came."""

from __future__ import annotations

from typing import Any

import numpy as np
import scipy.sparse as sp
from numpy.typing import NDArray

from recsys.errors import DataError, DataTypeError

F32 = np.float32
I64 = np.int64


def check_vectors(x: Any, name: str, where: str, *, dim: int | None = None) -> NDArray[np.float32]:
    """A finite 2-D float32 C-contiguous matrix; with ``dim``, its column count must equal it."""
    try:
        arr = np.asarray(x)
    except (TypeError, ValueError) as exc:
        raise DataTypeError(f"{name} of {where} must be a 2-D numeric array; it could not be converted ({exc}).") from exc
    if arr.dtype.kind not in "iuf":
        raise DataTypeError(f"{name} of {where} must be a 2-D numeric array. Got dtype {arr.dtype} instead.")
    if arr.ndim != 2:
        hint = " (use .reshape(1, -1) for a single vector)" if arr.ndim == 1 else ""
        raise DataError(
            f"{name} of {where} must be a 2-D array of shape (n, dim). Got an array of shape {arr.shape} instead{hint}."
        )
    if dim is not None and arr.shape[1] != dim:
        raise DataError(
            f"{name} of {where} must have {dim} columns (the index dimension). Got shape {arr.shape} instead."
        )
    if arr.shape[1] == 0:
        raise DataError(f"{name} of {where} must have at least one column. Got shape {arr.shape} instead.")
    with np.errstate(over="ignore"):  # values beyond float32 become inf and are reported below
        out = np.ascontiguousarray(arr, dtype=F32)
    check_finite(out, name, where)
    return out


def check_finite(arr: NDArray[Any], name: str, where: str) -> None:
    """Raise DataError naming the first row holding NaN/inf (float32 overflow counts), checked in row blocks."""
    step = max(1, (1 << 22) // max(1, arr.shape[1] if arr.ndim == 2 else 1))
    for s in range(0, arr.shape[0], step):
        block = arr[s : s + step]
        fin = np.isfinite(block)
        if not fin.all():
            bad = ~fin.all(axis=1) if block.ndim == 2 else ~fin
            r = int(np.flatnonzero(bad)[0])
            vals = block[r][~fin[r]] if block.ndim == 2 else block[r : r + 1]
            raise DataError(
                f"{name} of {where} must be finite (within float32 range). Row {s + r} holds {float(vals[0])}."
            )


def check_bias(x: Any, n: int, where: str) -> NDArray[np.float32]:
    """A finite 1-D float32 vector of length ``n``."""
    arr = np.asarray(x)
    if arr.dtype.kind not in "iuf":
        raise DataTypeError(f"item_bias of {where} must be a numeric 1-D array. Got dtype {arr.dtype} instead.")
    if arr.shape != (n,):
        raise DataError(f"item_bias of {where} must have shape ({n},) (one value per item). Got {arr.shape} instead.")
    with np.errstate(over="ignore"):
        out = np.ascontiguousarray(arr, dtype=F32)
    check_finite(out, "item_bias", where)
    return out


def check_rows_matrix(x: Any, name: str, n_queries: int, n_items: int) -> sp.csr_matrix | None:
    """``x`` as a canonical CSR pattern (sorted, no duplicates, int64 indices) of shape (n_queries, n_items)."""
    if x is None:
        return None
    if not sp.issparse(x):
        raise DataTypeError(
            f"{name} of ItemIndex.search must be a scipy.sparse matrix (CSR) with one row per query. "
            f"Got {type(x).__name__} instead."
        )
    if x.shape != (n_queries, n_items):
        raise DataError(
            f"{name} of ItemIndex.search must have shape (n_queries, n_items) = ({n_queries}, {n_items}). "
            f"Got {x.shape} instead."
        )
    m = sp.csr_matrix(x)
    if m is x or not m.has_canonical_format:
        m = m.copy()
        m.sum_duplicates()
    m.indptr = m.indptr.astype(I64, copy=False)
    m.indices = m.indices.astype(I64, copy=False)
    return m


def check_candidates(
    x: Any, n_queries: int, n_items: int
) -> tuple[sp.csr_matrix | None, NDArray[np.int64] | None]:
    """``(per_query_csr, None)``, ``(None, sorted_unique_items)`` or ``(None, None)``."""
    if x is None:
        return None, None
    if sp.issparse(x):
        return check_rows_matrix(x, "candidates", n_queries, n_items), None
    arr = np.asarray(x)
    if arr.ndim != 1:
        raise DataError(
            "candidates of ItemIndex.search must be a 1-D array of item indices or a sparse matrix "
            f"(n_queries, n_items). Got an array of shape {arr.shape} instead."
        )
    if arr.dtype.kind == "b":
        if arr.shape[0] != n_items:
            raise DataError(
                f"a boolean candidates mask of ItemIndex.search must have length n_items={n_items}. Got {arr.shape[0]}."
            )
        return None, np.flatnonzero(arr).astype(I64)
    if arr.size == 0:
        return None, np.empty(0, dtype=I64)
    if arr.dtype.kind not in "iu":
        raise DataTypeError(f"candidates of ItemIndex.search must hold integer item indices. Got dtype {arr.dtype} instead.")
    bad = (arr < 0) | (arr >= n_items)
    if bad.any():
        p = int(np.flatnonzero(bad)[0])
        raise DataError(
            f"candidates of ItemIndex.search holds item index {arr[p].item()!r} at position {p}, outside [0, {n_items})."
        )
    return None, np.unique(arr.astype(I64))
