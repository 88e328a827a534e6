"""ONNX export of the torch models: a self-contained graph and the JSON contract a service builds its inputs from.

The graph holds everything learned (the embedding table, the networks' weights)
and the per-user / per-item feature tables as constants, so a service sends
only row indices. The click models (DeepFM, DIN, the multi-task models) take
``user[B]`` and ``item[B]``, for models with a behaviour history (DIN)
``history[B, L]`` and ``history_length[B]`` (padded item rows, any ``L``), and
for a :class:`~recsys.models.Pipeline` ranker ``prior[B]``; they answer one
float32 logit per row and output (probability = ``sigmoid(logit)``). The
sequential models (SASRec, GRU4Rec) take ``history[B, L]`` and
``history_length[B]`` (right-aligned, see :class:`PaddedSequence`) and answer
``scores[B, n_items]``, the next-item score of every item. The JSON file beside
it (``<path>.json``) says how to build those inputs from external ids: the id
maps, the inputs' names, dtypes and shapes, the outputs, the history rule and,
for DIN, each user's training history.

A model takes part through its hooks: ``_onnx_network()`` (the module
exported), ``_onnx_outputs()`` (output names and meanings),
``_onnx_inputs()`` (the input contract), ``_onnx_sample(n)`` (inputs the
export checks the graph on), ``_onnx_contract()`` (its part of the JSON:
id maps, features, history) and ``_onnx_column_outputs`` (True: a (B, T)
network output gives T outputs of shape (B,); False: one output, returned whole).

Nothing here is imported by ``import recsys``; ``onnx`` and ``onnxruntime``
come with the ``recsys[onnx]`` extra.
"""

from __future__ import annotations

import copy
import hashlib
import inspect
import io
import json
import os
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch
from numpy.typing import NDArray
from torch import nn

from recsys._utils.fs import write_text_atomic
from recsys._version import __version__
from recsys.errors import MissingDependencyError, NotFittedError, ParameterError, RecsysError

FORMAT = "recsys-onnx"
FORMAT_VERSION = 1
# Opset 17: onnxruntime >= 1.13 and every maintained runtime (Java, C#, C++, JS) run it.
OPSET = 17
EXTRA_HINT = 'pip install "recsys[onnx]"'
# Rows the export checks the graph on (against the float32 torch network), and the largest difference it accepts.
CHECK_ROWS = 512
CHECK_TOLERANCE = 1e-4
# The TorchScript-tracing exporter (torch >= 2.9 defaults to the torch.export one, which needs onnxscript).
_TRACING: dict[str, Any] = {"dynamo": False} if "dynamo" in inspect.signature(torch.onnx.export).parameters else {}
_NEG = -1e30  # masks attention scores of history padding (finite: a row with no history must not give NaN)


def import_onnx() -> tuple[Any, Any]:
    """``(onnx, onnxruntime)``, or :class:`MissingDependencyError` naming the ``recsys[onnx]`` extra.

    Examples
    --------
    >>> onnx, ort = import_onnx()
    >>> ort.__name__
    'onnxruntime'
    """
    try:
        import onnx
        import onnxruntime
    except ImportError as e:
        raise MissingDependencyError(
            f"export_onnx needs onnx and onnxruntime, which are not installed ({e}). Install the onnx extra: {EXTRA_HINT}"
        ) from e
    return onnx, onnxruntime


# -- export networks -------------------------------------------------------------------------------


class IndexNetwork(nn.Module):
    """A network whose forward takes ``(user, item[, prior])`` row indices (DeepFM), returning its logits only."""

    def __init__(self, net: nn.Module, prior: bool) -> None:
        super().__init__()
        self.net, self.prior = net, prior

    def forward(self, user: torch.Tensor, item: torch.Tensor, prior: torch.Tensor | None = None) -> torch.Tensor:
        logits, _ = self.net(user, item, prior) if self.prior else self.net(user, item)
        return logits  # type: ignore[no-any-return]


class PaddedHistoryDIN(nn.Module):
    """DIN over a padded history ``history[B, L]`` + ``history_length[B]`` instead of the training store's
    packed runs (``end``, ``length`` pointers into a buffer that only exists in Python).

    Row ``b``'s history is ``history[b, :history_length[b]]``, oldest first;
    the newest ``max_len`` of those are attended to (as
    :class:`~recsys.models.DIN` caps its histories); entries past the length are
    never read. The network's own layers compute everything, in the order
    :meth:`DINNet.forward <recsys.models.deep.din.DINNet.forward>` applies them;
    only the history layout differs.
    """

    reps: torch.Tensor
    first: torch.Tensor
    key_part: torch.Tensor

    def __init__(self, net: nn.Module, max_len: int, prior: bool) -> None:
        super().__init__()
        self.net, self.max_len, self.prior = net, int(max_len), prior
        m: Any = net
        d = m.item_dim
        w = m.att_first.weight
        with torch.no_grad():
            # every item's representation, first-order weight and share of the activation unit's first layer
            # (W [t, h, t - h, t * h] = (Wq + Wd) t + (Wk - Wd) h + Wp (t * h)), once, as DINNet does per batch:
            # a row then gathers them instead of pooling its history's field embeddings per entry
            reps, first = m.item_reps(torch.arange(m.emb.item_idx.shape[0]))
            self.register_buffer("reps", reps.clone())
            self.register_buffer("first", first.clone())
            self.register_buffer("key_part", reps @ (w[:, d : 2 * d] - w[:, 2 * d : 3 * d]).T)

    def represent(
        self, user: torch.Tensor, item: torch.Tensor, history: torch.Tensor, history_length: torch.Tensor
    ) -> tuple[torch.Tensor, tuple[Any, ...]]:
        """As :meth:`DINNet.represent <recsys.models.deep.din.DINNet.represent>` (the same DNN input and
        state for ``finish``), from a padded history."""
        net: Any = self.net
        fu, first_u, sq_u = net.emb.side("user", user)
        target = self.reps.index_select(0, item)
        # lengths past the history axis count only the entries sent; one padding column (never read)
        # keeps the shapes non-empty, so a batch whose users have no history may send L = 0
        length = torch.minimum(history_length, torch.full_like(history_length, history.shape[1])).unsqueeze(1)
        history = torch.cat([history, torch.zeros_like(history_length).unsqueeze(1)], 1)
        pos = torch.arange(history.shape[1], device=history.device).unsqueeze(0)
        valid = (pos < length) & (pos >= length - self.max_len)
        hist = torch.where(valid, history, torch.zeros_like(history))  # padding may hold anything, even bad rows
        keys = self.reps[hist]  # (B, L, D)
        d = net.item_dim
        w = net.att_first.weight
        t_part = torch.addmm(net.att_first.bias, target, (w[:, :d] + w[:, 2 * d : 3 * d]).T)
        a = self.key_part[hist] + t_part.unsqueeze(1) + (target.unsqueeze(1) * keys) @ w[:, 3 * d :].T
        score = net.att_out(net.att_tail(net.att_act(a))).squeeze(-1)  # (B, L)
        mask = valid.to(score.dtype)
        if net.softmax:
            weight = torch.softmax(torch.where(valid, score, torch.full_like(score, _NEG)), 1) * mask
        else:
            weight = score * mask
        interest = (weight.unsqueeze(-1) * keys).sum(1)
        parts = [fu.flatten(1), target, interest]
        if net.emb.n_num:
            parts.append(net.emb.numeric(user, item).to(fu.dtype))
        return torch.cat(parts, 1), (fu, first_u, sq_u, self.first, item, target, interest, item)

    def forward(
        self,
        user: torch.Tensor,
        item: torch.Tensor,
        history: torch.Tensor,
        history_length: torch.Tensor,
        prior: torch.Tensor | None = None,
    ) -> torch.Tensor:
        net: Any = self.net
        x, state = self.represent(user, item, history, history_length)
        logit, _ = net.finish(net.out(net.dnn(x)).squeeze(-1), state, prior)
        return logit  # type: ignore[no-any-return]


class PaddedHistoryMultiTask(nn.Module):
    """A multi-task network with a DIN bottom over a padded history (see :class:`PaddedHistoryDIN`)."""

    def __init__(self, net: nn.Module, max_len: int) -> None:
        super().__init__()
        self.net = net
        self.din = PaddedHistoryDIN(net.bottom, max_len, False)  # type: ignore[arg-type]

    def forward(
        self,
        user: torch.Tensor,
        item: torch.Tensor,
        history: torch.Tensor,
        history_length: torch.Tensor,
        prior: torch.Tensor | None = None,
    ) -> torch.Tensor:
        net: Any = self.net
        x, state = self.din.represent(user, item, history, history_length)
        wide, _ = net.bottom.finish(torch.zeros_like(x[:, 0]), state)
        return net.logits_from_heads(net.heads_from(x, wide, prior))  # type: ignore[no-any-return]


class PaddedSequence(nn.Module):
    """A sequential network (SASRec, GRU4Rec) scoring every item as the next one of a padded history.

    Row ``b``'s history is right-aligned, as the network reads it: its
    ``history_length[b]`` real entries are the *last* ones of
    ``history[b]``, oldest first, the newest item in the last column; the
    entries before them are padding and never read. Entries are item row
    indices (positions in the id map). Only the newest ``max_len`` are read
    (the model's truncation: older items are dropped); a length past the
    history axis counts the entries sent, a length of 0 scores every item 0
    (the vector of an empty history). The history is laid into the network's
    own window of ``max_len`` positions, so the graph computes what the model
    computes for the same sequence; the output is ``(B, n_items)``, the dot
    product of the sequence's vector with every item's vector.
    """

    items: torch.Tensor

    def __init__(self, net: nn.Module, max_len: int) -> None:
        super().__init__()
        self.net, self.max_len = net, int(max_len)
        m: Any = net
        with torch.no_grad():
            self.register_buffer("items", m.item_table()[1:].clone())  # (n_items, dim), features included

    def forward(self, history: torch.Tensor, history_length: torch.Tensor) -> torch.Tensor:
        net: Any = self.net
        w = self.max_len
        sent = torch.minimum(history_length, torch.full_like(history_length, history.shape[1]))
        n = torch.clamp(sent, 0, w).unsqueeze(1)
        # the newest w columns, padded on the left when fewer were sent (any L, 0 included)
        pad = torch.zeros_like(history_length).unsqueeze(1).expand(-1, w)
        window = torch.cat([pad, history], 1)[:, -w:]
        valid = torch.arange(w, device=history.device).unsqueeze(0) >= w - n
        seq = torch.where(valid, window + 1, torch.zeros_like(window))  # table rows: item i is row i + 1, 0 padding
        query = net.last(seq) * (n > 0).to(self.items.dtype)
        return query @ self.items.T


class _Outputs(nn.Module):
    """One graph output per column of a (B, T) logit matrix; a (B,) vector stays one output; with
    ``split=False`` the network's one output is returned whole (a (B, n_items) score matrix)."""

    def __init__(self, net: nn.Module, n_outputs: int, split: bool = True) -> None:
        super().__init__()
        self.net, self.n_outputs, self.split = net, n_outputs, split

    def forward(self, *inputs: torch.Tensor) -> Any:
        out = self.net(*inputs)
        if not self.split:
            return out
        if self.n_outputs == 1:
            return out.reshape(-1)
        return tuple(out.unbind(1))


def cpu_copy(model: Any) -> nn.Module:
    """A float32 CPU copy of a fitted model's network in eval mode (the model's own module stays where it is)."""
    return copy.deepcopy(model.module_).cpu().float().eval()


def export_network(model: Any) -> nn.Module:
    """The float32 module a fitted DeepFM / DIN exports: forward takes the graph inputs (see :func:`input_spec`)
    in order and returns the logits, (B,) or (B, T) for T outputs.

    Examples
    --------
    >>> from recsys.models import DeepFM
    >>> from recsys.testing import tiny_interactions
    >>> model = DeepFM(label_threshold=4, epochs=1, hidden_units=[4], show_progress=False).fit(tiny_interactions())
    >>> type(export_network(model)).__name__
    'IndexNetwork'
    """
    from recsys.models.deep.din import DINNet

    net = cpu_copy(model)
    prior = bool(getattr(model, "uses_prior_", False))
    if isinstance(net, DINNet):
        return PaddedHistoryDIN(net, model.max_history_len, prior)
    if model.uses_history:
        raise RecsysError(f"{type(model).__name__} reads a behaviour history: override _onnx_network to export it")
    return IndexNetwork(net, prior)


# -- the input contract -----------------------------------------------------------------------------


def input_spec(model: Any) -> list[dict[str, Any]]:
    """The graph's inputs in order: name, dtype, shape (``"batch"``, ``"history"``: any size) and meaning."""
    spec = [
        {"name": "user", "dtype": "int64", "shape": ["batch"], "meaning": "row index of the user: its position in user_ids"},
        {"name": "item", "dtype": "int64", "shape": ["batch"], "meaning": "row index of the candidate item: its position in item_ids"},
    ]
    if model.uses_history:
        spec += [
            {
                "name": "history",
                "dtype": "int64",
                "shape": ["batch", "history"],
                "meaning": "the user's history as item row indices, oldest first, left-aligned; entries past "
                "history_length are never read (send 0); the history axis may have any size, 0 included",
            },
            {
                "name": "history_length",
                "dtype": "int64",
                "shape": ["batch"],
                "meaning": "number of real entries at the start of each history row (0: no history; more than the "
                "history axis counts as all of it); only the newest history.max_length of them are attended to",
            },
        ]
    if getattr(model, "uses_prior_", False):
        spec.append({
            "name": "prior",
            "dtype": "float32",
            "shape": ["batch"],
            "meaning": "the Pipeline retriever's score of the candidate, standardised with the mean and the "
            "(population) standard deviation of that user's n_candidates best retriever scores, seen items "
            "excluded; 0 when that deviation is 0 (see recsys.models.pipeline.score_stats)",
        })
    return spec


def output_spec(outputs: dict[str, str], shape: list[Any] | None = None) -> list[dict[str, Any]]:
    """The outputs' JSON entries: each of ``shape`` (default ``["batch"]``)."""
    return [{"name": k, "dtype": "float32", "shape": list(shape or ["batch"]), "meaning": v} for k, v in outputs.items()]


def _ids(ids: NDArray[Any]) -> tuple[list[Any], str]:
    arr = np.asarray(ids)
    if arr.dtype.kind in "iu":
        return arr.astype(np.int64).tolist(), "int"
    return [str(x) for x in arr.tolist()], "str"


def training_histories(model: Any) -> dict[str, Any]:
    """Each user's newest ``max_history`` training positives (item rows, oldest first), CSR by user row."""
    indptr = np.asarray(model.history_indptr_, dtype=np.int64)
    n = np.diff(indptr)
    keep = np.minimum(n, model.max_history_len)
    new_ptr = np.zeros(len(indptr), dtype=np.int64)
    np.cumsum(keep, out=new_ptr[1:])
    # entry j of user u (new layout) is entry indptr[u+1] - keep[u] + j of the store
    owner = np.repeat(np.arange(len(n)), keep)
    src = indptr[1:][owner] - keep[owner] + (np.arange(new_ptr[-1]) - new_ptr[:-1][owner])
    ts = np.asarray(model.history_timestamps_)[src]
    return {
        "indptr": new_ptr.tolist(),
        "items": np.asarray(model.history_items_, dtype=np.int64)[src].tolist(),
        "timestamps": ts.tolist(),
        "timestamp_unit": "ns since the epoch (datetimes)" if model.timestamp_unit_ == "ns" else "as in the training data",
    }


def contract(
    model: Any, outputs: dict[str, str], graph_name: str, graph_bytes: bytes, output_shape: list[Any] | None = None
) -> dict[str, Any]:
    """The JSON description of an exported graph (see the README, "Serving deep models without Python"):
    what every export writes, then the model's own part (``model._onnx_contract()``)."""
    return {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "recsys_version": __version__,
        "model_class": type(model).__name__,
        "params": {k: (list(v) if isinstance(v, tuple) else v) for k, v in model.get_params().items()},
        "graph": graph_name,
        "graph_sha256": hashlib.sha256(graph_bytes).hexdigest(),
        "opset": OPSET,
        "inputs": model._onnx_inputs(),
        "outputs": output_spec(outputs, output_shape),
        **model._onnx_contract(),
    }


def click_contract(model: Any) -> dict[str, Any]:
    """A click model's part of the contract: id maps, features, the history rule and training histories."""
    users, user_kind = _ids(model.users_.ids)
    items, item_kind = _ids(model.items_.ids)
    out: dict[str, Any] = {
        "user_ids": users,
        "item_ids": items,
        "id_types": {"user": user_kind, "item": item_kind},
        "never_recommended_items": np.asarray(model.cold_items_, dtype=np.int64).tolist(),
        "features": {
            "fields": model.fields_["fields"],
            "encoding": "none at serving time: every user and item feature is encoded into tables inside the "
            "graph, looked up by the user / item row; users and items absent from user_ids / item_ids cannot be scored",
        },
        "history": None,
    }
    if any(f["kind"] == "vector" for f in model.fields_["fields"]):
        out["features"]["vectors"] = (
            "vector fields (kind 'vector', e.g. text embeddings) are L2-normalised vectors per user / item, stored in "
            "the graph with their learned projection and looked up by the row like every other feature: no input carries them"
        )
    if model.uses_history:
        threshold = model.label_threshold
        out["history"] = {
            "max_length": model.max_history_len,
            "rule": "the user's positive interactions with a timestamp strictly before the request time, in time "
            "order (ties by external item id), the newest max_length kept; a positive is "
            + ("every interaction" if threshold is None else f"an interaction with rating >= {threshold}"),
            "label_threshold": threshold,
            "training": training_histories(model),
        }
    return out


def sequence_inputs(model: Any) -> list[dict[str, Any]]:
    """A sequential model's graph inputs: a right-aligned padded history and its lengths."""
    return [
        {
            "name": "history",
            "dtype": "int64",
            "shape": ["batch", "history"],
            "meaning": "the user's sequence as item row indices (positions in item_ids) in time order, "
            "RIGHT-aligned: the history_length real entries are the last ones of the row, the newest item in the "
            "last column; the entries before them are padding, never read (send 0); the history axis may have any "
            "size, 0 included",
        },
        {
            "name": "history_length",
            "dtype": "int64",
            "shape": ["batch"],
            "meaning": "number of real entries at the end of each history row (0: no history, every score 0; more "
            "than the history axis counts as all of it); only the newest history.max_length of them are read",
        },
    ]


def sequence_contract(model: Any) -> dict[str, Any]:
    """A sequential model's part of the contract: the item id map, its features and the history rule."""
    items, item_kind = _ids(model.items_.ids)
    return {
        "item_ids": items,
        "id_types": {"item": item_kind},
        "never_recommended_items": np.asarray(model.cold_items_, dtype=np.int64).tolist(),
        "features": {
            "item_features": list(model.item_features or []),
            "encoding": "none at serving time: the item feature embeddings are added to the item table inside the "
            "graph; items absent from item_ids cannot be sent or scored",
        },
        "history": {
            "max_length": int(model.max_len),
            "alignment": "right",
            "padding": "history[b, :L - history_length[b]] is padding (any value, never read); the real entries "
            "history[b, L - history_length[b]:] hold the sequence, oldest first",
            "rule": "the user's interactions in time order (equal times in the order they happened, or as "
            "recorded), every interaction an entry (ratings are not used), items in never_recommended_items "
            "left out (they have no trained embedding); of a longer sequence only the newest max_length entries "
            "are read, as the model truncates; the graph keeps no per-user state",
        },
    }


def sequence_sample(model: Any, n: int) -> dict[str, NDArray[Any]]:
    """Random right-aligned histories of ``n`` rows, lengths from 0 to past ``max_len`` (and past the axis)."""
    rng = np.random.default_rng(0)
    width = model.max_len + 3
    history = rng.integers(0, model.n_items_, (n, width)).astype(np.int64)
    length = rng.integers(0, width + 2, n).astype(np.int64)
    length[: min(n, 3)] = [1, width, 0][: min(n, 3)]
    return {"history": history, "history_length": length}


# -- export -----------------------------------------------------------------------------------------


def _check_path(path: Any) -> Path:
    if not isinstance(path, (str, os.PathLike)) or not str(path):
        raise ParameterError(f"export_onnx's 'path' must be a file path (str or os.PathLike); got {path!r:.80}")
    target = Path(path)
    if target.is_dir():
        raise ParameterError(f"export_onnx's path={str(path)!r} is a directory; expected a file path such as 'model.onnx'")
    parent = target.parent
    while not parent.exists() and parent != parent.parent:
        parent = parent.parent
    if not parent.is_dir() or not os.access(parent, os.W_OK | os.X_OK):
        raise ParameterError(f"export_onnx cannot write path={str(path)!r}: {str(parent)!r} is not a writable directory")
    return target


def _sample_feed(model: Any, n: int) -> dict[str, NDArray[Any]]:
    """Graph inputs for ``n`` random known pairs, histories from the training store (the recommendation-time ones)."""
    rng = np.random.default_rng(0)
    users = rng.integers(0, len(model.users_), n).astype(np.int64)
    items = rng.integers(0, model.n_items_, n).astype(np.int64)
    feed: dict[str, NDArray[Any]] = {"user": users, "item": items}
    if model.uses_history:
        feed["history"], feed["history_length"] = padded_history(model, users)
    if getattr(model, "uses_prior_", False):
        feed["prior"] = rng.standard_normal(n).astype(np.float32)
    return feed


def padded_history(model: Any, users: NDArray[np.int64], timestamps: NDArray[Any] | None = None) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
    """``(history (B, L), history_length (B,))`` of user rows from a fitted DIN's training store: the graph's
    history inputs for what the model itself attends to (``timestamps``: positives strictly before each)."""
    end, length = model._history(np.asarray(users, np.int64), timestamps)
    width = max(1, int(length.max(initial=0)))
    pos = np.arange(width)
    idx = np.clip(end[:, None] - length[:, None] + pos, 0, None)
    items = np.asarray(model.history_items_, dtype=np.int64)
    hist = np.where(pos < length[:, None], items[np.minimum(idx, len(items) - 1)] if len(items) else 0, 0)
    return hist.astype(np.int64), length.astype(np.int64)


def torch_logits(model: Any, feed: dict[str, NDArray[Any]]) -> NDArray[np.float32]:
    """The float32 torch network's output for a graph feed (the export module run in torch): (B,) or (B, T)
    logits, a sequential model's (B, n_items) scores."""
    net = model._onnx_network()
    names = [s["name"] for s in model._onnx_inputs()]
    with torch.inference_mode():
        out = net(*(torch.from_numpy(np.ascontiguousarray(feed[k])) for k in names))
    return np.asarray(out.float().cpu().numpy())


def export_onnx(model: Any, path: Any, *, check: bool = True) -> tuple[Path, Path]:
    """Write ``model``'s ONNX graph to ``path`` and its input contract to ``<path>.json`` (see
    :meth:`DeepRecommender.export_onnx <recsys.models.deep._base.DeepRecommender.export_onnx>`)."""
    if not model.is_fitted:
        raise NotFittedError(f"This {type(model).__name__} is not fitted yet: call fit(data) before export_onnx(path).")
    target = _check_path(path)
    onnx, ort = import_onnx()
    outputs = dict(model._onnx_outputs())
    if not outputs or not all(isinstance(k, str) and k for k in outputs):
        raise RecsysError(f"{type(model).__name__}._onnx_outputs must name at least one output; got {list(outputs)}")
    inputs = model._onnx_inputs()
    names = [s["name"] for s in inputs]
    clash = set(names) & set(outputs)
    if clash:
        raise RecsysError(f"{type(model).__name__}._onnx_outputs names {sorted(clash)}, which are input names")
    split = bool(model._onnx_column_outputs)
    net = _Outputs(model._onnx_network(), len(outputs), split).eval()
    feed = model._onnx_sample(4)
    args = tuple(torch.from_numpy(feed[k]) for k in names)
    with torch.no_grad():
        shape = tuple(net.net(*args).shape)
    if split and shape not in ([(4,), (4, 1)] if len(outputs) == 1 else [(4, len(outputs))]):
        raise RecsysError(
            f"{type(model).__name__}'s export network returns logits of shape {shape} for 4 rows; "
            f"_onnx_outputs names {len(outputs)} output(s): expected (4,) or (4, {len(outputs)})"
        )
    if not split and (len(outputs) != 1 or not shape or shape[0] != 4):
        raise RecsysError(
            f"{type(model).__name__}'s export network returns shape {shape} for 4 rows as one whole output; "
            f"_onnx_outputs names {len(outputs)} output(s): expected one, and 4 rows"
        )
    out_shape: list[Any] = ["batch"] if split else ["batch", *shape[1:]]
    # every input axis named in the contract ("batch", "history") is dynamic
    axes: dict[str, dict[int, str]] = {
        s["name"]: {a: d for a, d in enumerate(s["shape"]) if isinstance(d, str)} for s in inputs
    }
    axes.update({k: {0: "batch"} for k in outputs})
    buf = io.BytesIO()
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")  # the TorchScript exporter's deprecation and tracer notes
        torch.onnx.export(
            net,
            args,
            buf,  # type: ignore[arg-type]  # the tracing exporter writes to file objects too
            input_names=names,
            output_names=list(outputs),
            dynamic_axes=axes,
            opset_version=OPSET,
            do_constant_folding=True,
            **_TRACING,
        )
    graph = onnx.load_from_string(buf.getvalue())
    onnx.checker.check_model(graph)
    graph.doc_string = f"recsys {__version__} {type(model).__name__}; inputs and id maps: {target.name}.json"
    data = graph.SerializeToString()
    if check:
        _check_parity(model, data, ort, list(outputs), split)
    meta = contract(model, outputs, target.name, data, out_shape)
    json_path = target.with_name(target.name + ".json")
    try:
        write_text_atomic(target, data)
        write_text_atomic(json_path, json.dumps(meta, allow_nan=False) + "\n")
    except OSError as e:
        raise ParameterError(f"export_onnx cannot write path={str(path)!r}: {e}") from e
    return target, json_path


def session(data: bytes | str | os.PathLike[str], threads: int | None = None) -> Any:
    """An onnxruntime CPU session over a graph (bytes or a file), with ``threads`` intra-op threads."""
    _, ort = import_onnx()
    opts = ort.SessionOptions()
    if threads is not None:
        opts.intra_op_num_threads = threads
        opts.inter_op_num_threads = 1
    src = data if isinstance(data, bytes) else str(data)
    return ort.InferenceSession(src, sess_options=opts, providers=["CPUExecutionProvider"])


def _check_parity(model: Any, data: bytes, ort: Any, outputs: list[str], split: bool = True) -> None:
    """Run the graph on sample rows and compare with the float32 torch network: an exporter fault fails here."""
    feed = model._onnx_sample(min(CHECK_ROWS, max(1, len(model.users_) * 4)))
    answers = session(data, threads=1).run(outputs, feed)
    got = np.stack(answers, 1) if split else answers[0]
    want = torch_logits(model, feed).reshape(got.shape)
    diff = float(np.max(np.abs(got - want)))
    # float32 rounding grows with the size of the values compared: whole-catalogue scores are relative to the largest
    scale = 1.0 if split else max(1.0, float(np.max(np.abs(want), initial=0.0)))
    if not diff <= CHECK_TOLERANCE * scale:
        raise RecsysError(
            f"the exported graph of this {type(model).__name__} differs from the torch network by {diff:.3g} "
            f"(> {CHECK_TOLERANCE}) on {len(want)} sample rows; please report this"
        )


__all__ = [
    "EXTRA_HINT",
    "IndexNetwork",
    "PaddedHistoryDIN",
    "PaddedHistoryMultiTask",
    "PaddedSequence",
    "cpu_copy",
    "export_network",
    "export_onnx",
    "import_onnx",
    "input_spec",
    "padded_history",
    "sequence_contract",
    "sequence_inputs",
    "sequence_sample",
    "session",
    "torch_logits",
]
