"""Parameters of :class:`recsys.index.ItemIndex`: the metrics and kinds, each kind's parameters, defaults and checks."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from recsys._utils.params import check_int
from recsys.errors import ParameterError

__all__ = [
    "AUTO_APPROXIMATE",
    "KINDS",
    "METRICS",
    "PARAMS",
    "SEARCH_PARAMS",
    "check_params",
    "check_search_params",
    "default_params",
    "faiss_dim",
    "resolve_params",
]

METRICS = ("dot", "cosine", "l2")
KINDS = ("auto", "exact", "ivf", "hnsw", "ivfpq")
#: The kind ``kind="auto"`` builds for large catalogues.
AUTO_APPROXIMATE = "ivf"

# Parameters of each kind; search-time ones can be changed later with set_search_params.
PARAMS: dict[str, tuple[str, ...]] = {
    "exact": (),
    "ivf": ("nlist", "nprobe", "train_size", "seed"),
    "hnsw": ("M", "ef_construction", "ef_search"),
    "ivfpq": ("nlist", "nprobe", "pq_m", "pq_bits", "rerank", "train_size", "seed"),
}
SEARCH_PARAMS = ("nprobe", "ef_search", "rerank")


def default_params(kind: str, n: int, base_dim: int) -> dict[str, int]:
    """Defaults that reach recall@10 >= 0.95 on the clustered benchmark (see benchmarks/index.py)."""
    # ~4 sqrt(n) lists of >= 39 items (faiss' k-means minimum); 16 probed lists
    nlist = int(max(1, min(round(4 * math.sqrt(n)), n // 39)))
    if kind == "ivf":
        return {"nlist": nlist, "nprobe": min(nlist, 16), "train_size": min(n, 40 * nlist), "seed": 0}
    if kind == "hnsw":
        return {"M": 32, "ef_construction": 80, "ef_search": 128}
    if kind == "ivfpq":
        pq_m = max(1, math.ceil(base_dim / 4))
        return {
            "nlist": nlist,
            "nprobe": min(nlist, 16),
            "pq_m": pq_m,
            # 2**pq_bits codewords need ~39 training points each; small catalogues get fewer bits
            "pq_bits": int(min(8, max(1, math.floor(math.log2(max(2.0, n / 39)))))),
            "rerank": 10,
            "train_size": min(n, max(40 * nlist, 39 * 256)),
            "seed": 0,
        }
    return {}



def check_params(kind: str, given: Mapping[str, Any], n: int, base_dim: int, where: str) -> dict[str, int]:
    """Defaults of ``kind`` updated with ``given``; unknown names and out-of-range values raise ParameterError."""
    allowed = PARAMS[kind]
    unknown = sorted(set(given) - set(allowed))
    if unknown:
        valid = ", ".join(allowed) if allowed else "none"
        raise ParameterError(f"{where} got unknown parameter(s) {unknown} for kind={kind!r}; valid: {valid}.")
    params = default_params(kind, n, base_dim)
    limits = {
        "nlist": (1, n),
        "train_size": (1, n),
        "pq_bits": (1, 16),
        "pq_m": (1, base_dim),
        "seed": (0, 2**31 - 1),
    }
    for name, value in given.items():
        lo, hi = limits.get(name, (1, None))
        params[name] = check_int(where, name, value, low=lo, high=hi)
    if "nlist" in params:
        if "nprobe" not in given:
            params["nprobe"] = min(params["nprobe"], params["nlist"])
        params["nprobe"] = check_int(where, "nprobe", params["nprobe"], low=1, high=params["nlist"])
        lo_train = params["nlist"] if kind == "ivf" else max(params["nlist"], 2 ** params["pq_bits"])
        if "train_size" not in given:
            params["train_size"] = min(n, max(params["train_size"], lo_train))
        if params["train_size"] < lo_train:
            raise ParameterError(
                f"The 'train_size' parameter of {where} must be >= {lo_train} (nlist"
                f"{'' if kind == 'ivf' else ' and 2**pq_bits'}) for kind={kind!r}. Got {params['train_size']} instead."
            )
    return params



def resolve_params(
    kind: str, given: Mapping[str, Any], n: int, base_dim: int, where: str, *, exact_max: int
) -> tuple[str, dict[str, int]]:
    """The kind to build and its checked parameters; ``auto`` is ``exact`` below ``exact_max`` items.

    With ``auto`` the given parameters are checked against :data:`AUTO_APPROXIMATE`
    even when the exact kind is chosen (then they are dropped), so a typo is caught
    whatever the catalogue size.

    Examples
    --------
    >>> resolve_params("auto", {"nlist": 4}, 100, 8, "f", exact_max=1000)
    ('exact', {})
    >>> resolve_params("auto", {"nlist": 4}, 100, 8, "f", exact_max=50)[1]["nlist"]
    4
    """
    if kind == "auto":
        checked = check_params(AUTO_APPROXIMATE, given, n, base_dim, where)
        kind, given = ("exact", {}) if n < exact_max else (AUTO_APPROXIMATE, checked)
    return kind, check_params(kind, given, n, base_dim, where)


def check_search_params(kind: str, current: Mapping[str, int], given: Mapping[str, Any], where: str) -> dict[str, int]:
    """``current`` updated with the search-time parameters ``given`` (nprobe, ef_search, rerank), checked.

    Examples
    --------
    >>> check_search_params("ivf", {"nlist": 8, "nprobe": 2}, {"nprobe": 4}, "f")["nprobe"]
    4
    >>> check_search_params("ivf", {"nlist": 8, "nprobe": 2}, {"nprobe": 9}, "f")
    Traceback (most recent call last):
    ...
    recsys.errors.ParameterError: The 'nprobe' parameter of f must be an int in [1, 8]. Got 9 instead.
    """
    allowed = [p for p in SEARCH_PARAMS if p in PARAMS[kind]]
    unknown = sorted(set(given) - set(allowed))
    if unknown:
        raise ParameterError(
            f"{where} got unknown parameter(s) {unknown} for kind={kind!r}; valid: {', '.join(allowed) or 'none'}."
        )
    new = dict(current)
    for name, value in given.items():
        high = current["nlist"] if name == "nprobe" else None
        new[name] = check_int(where, name, value, low=1, high=high)
    return new


def faiss_dim(metric: str, dim: int, has_bias: bool, kind: str, params: Mapping[str, Any]) -> int:
    """Dimension of the vectors stored in the faiss index (padded to a multiple of pq_m for ivfpq)."""
    d = dim + (1 if has_bias else 0) + (1 if metric == "dot" else 0)
    if kind == "ivfpq":
        m = params.get("pq_m")
        m = m if isinstance(m, int) and m >= 1 else max(1, math.ceil(d / 4))
        d = m * math.ceil(d / m)
    return d

