"""How an :class:`recsys.index.ItemIndex` is stored: a JSON config plus arrays (no pickle), and read back checked."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import faiss as _faiss
import numpy as np
from numpy.typing import NDArray

from recsys._utils.registry import StateCodec
from recsys.errors import ArtifactError, ParameterError
from recsys.index._params import METRICS, PARAMS, check_params, faiss_dim

if TYPE_CHECKING:
    from recsys.index._index import ItemIndex

__all__ = ["FAISS_TYPES", "FORMAT", "FORMAT_VERSION", "index_arrays", "index_codec", "index_config", "read_index_state"]

# faiss' partial type stubs lack most of what is used here.
faiss: Any = _faiss
F32 = np.float32

FORMAT = "recsys.ItemIndex"
FORMAT_VERSION = 1
#: The faiss class an artifact of each approximate kind must hold.
FAISS_TYPES = {"ivf": "IndexIVFFlat", "hnsw": "IndexHNSWFlat", "ivfpq": "IndexIVFPQ"}


def index_config(index: ItemIndex) -> dict[str, Any]:
    """The JSON config of an index (see :meth:`recsys.index.ItemIndex.get_config`).

    Examples
    --------
    >>> import numpy as np
    >>> from recsys.index import ItemIndex
    >>> config = index_config(ItemIndex.build(np.eye(3), kind="exact"))
    >>> config["format"], config["n_items"], config["params"]
    ('recsys.ItemIndex', 3, {})
    """
    return {
        "format": FORMAT,
        "version": FORMAT_VERSION,
        "metric": index.metric,
        "kind": index.kind,
        "dim": index.dim,
        "n_items": index.n_items,
        "has_bias": index.has_bias,
        "params": index.params,
    }


def index_arrays(matrix: NDArray[np.float32], faiss_index: Any) -> dict[str, NDArray[Any]]:
    """The arrays stored beside the config: ``matrix``, plus ``faiss_index`` (uint8) for approximate kinds.

    Examples
    --------
    >>> import numpy as np
    >>> sorted(index_arrays(np.eye(2, dtype=np.float32), None))
    ['matrix']
    """
    out: dict[str, NDArray[Any]] = {"matrix": matrix}
    if faiss_index is not None:
        out["faiss_index"] = faiss.serialize_index(faiss_index)
    return out


def read_index_state(config: Mapping[str, Any], arrays: Mapping[str, Any]) -> dict[str, Any]:
    """The checked state of a stored index: the keyword arguments of the ``ItemIndex`` constructor.

    Raises
    ------
    ArtifactError
        Not a valid ItemIndex artifact (see :meth:`recsys.index.ItemIndex.from_arrays`).

    Examples
    --------
    >>> import numpy as np
    >>> config = {"format": "recsys.ItemIndex", "version": 1, "metric": "dot", "kind": "exact",
    ...           "dim": 2, "n_items": 2, "has_bias": False, "params": {}}
    >>> state = read_index_state(config, {"matrix": np.eye(2, dtype=np.float32)})
    >>> state["kind"], state["faiss_index"]
    ('exact', None)
    """

    def fail(msg: str) -> ArtifactError:
        return ArtifactError(f"Invalid ItemIndex artifact: {msg}")

    if not isinstance(config, Mapping) or config.get("format") != FORMAT:
        raise fail(f"config 'format' must be {FORMAT!r}.")
    if config.get("version") != FORMAT_VERSION:
        raise fail(f"unsupported format version {config.get('version')!r} (this recsys reads {FORMAT_VERSION}).")
    metric, kind = config.get("metric"), config.get("kind")
    if metric not in METRICS:
        raise fail(f"metric {metric!r} is not one of {METRICS}.")
    if kind not in PARAMS:
        raise fail(f"kind {kind!r} is not one of {tuple(PARAMS)}.")
    dim, n, has_bias = config.get("dim"), config.get("n_items"), config.get("has_bias")
    for name, value in (("dim", dim), ("n_items", n)):
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise fail(f"{name} must be a positive int. Got {value!r}.")
    assert isinstance(dim, int) and isinstance(n, int)
    if not isinstance(has_bias, bool) or (has_bias and metric != "dot"):
        raise fail(f"has_bias={has_bias!r} does not fit metric={metric!r}.")
    raw = config.get("params")
    if not isinstance(raw, Mapping):
        raise fail(f"params must be a mapping. Got {type(raw).__name__}.")
    expected_keys = {"matrix"} | ({"faiss_index"} if kind != "exact" else set())
    if set(arrays) != expected_keys:
        raise fail(f"arrays must be exactly {sorted(expected_keys)} for kind={kind!r}. Got {sorted(arrays)}.")
    matrix = np.asarray(arrays["matrix"])
    cols = dim + (1 if (has_bias or metric == "l2") else 0)
    if matrix.dtype != F32 or matrix.shape != (n, cols):
        raise fail(
            f"'matrix' must be float32 of shape ({n}, {cols}) for n_items={n}, dim={dim}, metric={metric!r}. "
            f"Got {matrix.dtype} {matrix.shape}."
        )
    if not np.isfinite(matrix).all():
        raise fail("'matrix' holds NaN or inf.")
    try:
        params = check_params(kind, raw, n, faiss_dim(metric, dim, has_bias, "ivf", {}), "ItemIndex.from_arrays")
    except ParameterError as exc:
        raise fail(str(exc)) from exc
    if set(params) != set(raw):
        raise fail(f"params {sorted(raw)} are incomplete for kind={kind!r} (expected {sorted(params)}).")
    index = None
    if kind != "exact":
        blob = np.asarray(arrays["faiss_index"])
        if blob.dtype != np.uint8 or blob.ndim != 1:
            raise fail(f"'faiss_index' must be a 1-D uint8 array. Got {blob.dtype} {blob.shape}.")
        try:
            # already the concrete type (a downcast wrapper would not own the index)
            index = faiss.deserialize_index(blob)
        except Exception as exc:  # faiss raises RuntimeError (and others) on corrupt bytes
            raise fail(f"'faiss_index' could not be deserialised by faiss ({str(exc).splitlines()[0]}).") from exc
        want = faiss_dim(metric, dim, has_bias, kind, params)
        if type(index).__name__ != FAISS_TYPES[kind]:
            raise fail(f"'faiss_index' is a {type(index).__name__}, expected {FAISS_TYPES[kind]} for kind={kind!r}.")
        if index.ntotal != n or index.d != want:
            raise fail(
                f"'faiss_index' holds {index.ntotal} vectors of dimension {index.d}; "
                f"expected {n} of dimension {want}."
            )
        if kind in ("ivf", "ivfpq") and index.nlist != params["nlist"]:
            raise fail(f"'faiss_index' has nlist={index.nlist}, config says {params['nlist']}.")
        if kind == "ivfpq" and (index.pq.M != params["pq_m"] or index.pq.nbits != params["pq_bits"]):
            raise fail("'faiss_index' product quantizer does not match pq_m / pq_bits of the config.")
        if kind == "hnsw" and index.hnsw.nb_neighbors(1) != params["M"]:
            raise fail(f"'faiss_index' has M={index.hnsw.nb_neighbors(1)}, config says {params['M']}.")
    return {
        "metric": metric,
        "kind": kind,
        "dim": dim,
        "matrix": np.ascontiguousarray(matrix),
        "has_bias": has_bias,
        "params": params,
        "faiss_index": index,
    }


def index_codec(cls: type[ItemIndex]) -> StateCodec:
    """How artifacts store instances of ``cls`` (``ItemIndex``): its config and the arrays it is rebuilt from.

    Examples
    --------
    >>> from recsys.index import ItemIndex
    >>> index_codec(ItemIndex).tag
    '__itemindex__'
    """
    return StateCodec(
        "__itemindex__", cls, "arrays", lambda ix: ix.get_config(), lambda ix: ix.to_arrays(), cls.from_arrays, "an item index"
    )
