"""What SASRec and GRU4Rec share: sequences, padding, losses, validation, training, fold-in and persistence.

A sequential model reads each user's history as a sequence ordered in time
and learns to predict the next item at every position. The network encodes a
sequence of item indices into one vector per position; the score of an item
is the dot product of that vector with the item's vector (the input item
embedding, tied, plus the item's feature embeddings). With ``history_mean``
(the default) the vector at each position also holds ``sqrt(dim)`` times the
mean of the input embeddings read so far, an order-free summary of the
history; ``set_loss`` adds a training loss that predicts every item of a
sequence from the mean of the others. A user's vector is the
encoding at the last position of their whole training history, so a fitted
model is an :class:`~recsys.models._embedding.EmbeddingRecommender`:
retrieval goes through the shared :class:`~recsys.index.ItemIndex` and a new
user's sequence is scored by encoding it, without refitting.

Sequences
---------
* A user's rows are ordered by timestamp; rows with equal timestamps keep
  the order of the rows in the data (a stable sort), and a history given to
  ``recommend_history`` keeps the order it was given in for equal
  timestamps (or entirely, without ``timestamps``).
* Interactions without timestamps: the order of the rows is the sequence
  order, with a :class:`~recsys.errors.DataWarning` saying so.
* Every interaction is an item of the sequence; ratings and weights are not
  used (binarise or filter the data first to keep only positives).
* Only the newest ``max_len`` items of a history are read (training rows
  hold the newest ``max_len + 1``: ``max_len`` inputs and their next items);
  older items are dropped.
* Sequences are padded on the left with index 0 (item ``i`` is row ``i + 1``
  of the embedding table). A user with a single interaction gives no
  training target but is still recommended from that one item.

Losses
------
``"softmax"`` (default)
    Cross-entropy over the whole catalogue at every position (Klenitskiy &
    Vasilev 2023: with it SASRec beats BERT4Rec). Its logits take
    ``batch_size * max_len * n_items`` floats: when that exceeds the memory
    available, ``fit`` raises a ParameterError naming ``loss="sampled"``.
``"sampled"``
    Cross-entropy over the next item and ``n_negatives`` items drawn
    uniformly per position (an accidental draw of the next item is masked).
``"gbce"``
    gSASRec's generalised binary cross-entropy (Petrov & Macdonald 2023):
    ``n_negatives`` uniform negatives and the positive's probability raised to
    ``beta = alpha * (t * (1 - 1 / alpha) + 1 / alpha)``, ``alpha`` the
    sampling rate ``n_negatives / (n_items - 1)`` and ``t = gbce_t``, which
    counters the overconfidence of sampled binary cross-entropy.
"""

from __future__ import annotations

import copy
import os
import time
import warnings
from abc import abstractmethod
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
from numpy.typing import NDArray

from recsys._state_spec import Array, ArrayDict, Json, Spec, Where
from recsys._utils.params import check_bool, check_choice, check_float, check_int
from recsys.data import Interactions
from recsys.errors import ArtifactError, DataError, DataWarning, ParameterError
from recsys.models._embedding import EmbeddingRecommender
from recsys.models.deep.features import FieldSpec, _encode_one, _series
from recsys.models.deep.trainer import TrainConfig, Trainer, resolve_device, torch_threads

LOSSES = ("softmax", "sampled", "gbce")
# Fraction of the available memory the full-softmax logits of one batch (with their gradient) may take.
_SOFTMAX_MEMORY_SHARE = 0.5
# Sequences encoded per inference forward pass.
_INFER_ROWS = 1024


# -- sequences ------------------------------------------------------------------------------


def user_sequences(data: Interactions, owner: str) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
    """``(indptr, items)``: each user's item indices in time order, ties in row order (CSR-style).

    Without timestamps the rows' order is the sequence order (with a DataWarning).

    Examples
    --------
    >>> d = Interactions.from_arrays(["a", "a", "a", "b"], [1, 2, 3, 4], timestamps=[20, 10, 20, 5])
    >>> indptr, items = user_sequences(d, "SASRec")
    >>> d.items.to_ids(items[indptr[0]:indptr[1]]).tolist()
    [2, 1, 3]
    """
    users = np.asarray(data.user_index, dtype=np.int64)
    if data.timestamps is None:
        warnings.warn(
            f"{owner}: these interactions have no timestamps, so each user's rows are taken in the order given "
            "(pass timestamp_col when building the Interactions to order them in time)",
            DataWarning,
            stacklevel=4,
        )
        order = np.argsort(users, kind="stable")
    else:
        order = np.lexsort((np.asarray(data.timestamps), users))  # stable: equal times keep row order
    indptr = np.zeros(data.n_users + 1, dtype=np.int64)
    np.cumsum(np.bincount(users, minlength=data.n_users), out=indptr[1:])
    return indptr, np.asarray(data.item_index, dtype=np.int64)[order]


def padded(items: NDArray[np.int64], ends: NDArray[np.int64], lengths: NDArray[np.int64], width: int) -> NDArray[np.int64]:
    """Rows ``items[end - length:end]`` as table rows (index + 1), left-padded with 0 to ``width``.

    Examples
    --------
    >>> padded(np.array([5, 6, 7]), np.array([3, 1]), np.array([2, 1]), 3).tolist()
    [[0, 7, 8], [0, 0, 6]]
    """
    ends = np.asarray(ends, dtype=np.int64)
    lengths = np.minimum(np.asarray(lengths, dtype=np.int64), width)
    pos = ends[:, None] - width + np.arange(width, dtype=np.int64)[None, :]
    valid = np.arange(width)[None, :] >= (width - lengths)[:, None]
    return np.where(valid, items[np.where(valid, pos, 0)] + 1, 0)


class _SequenceRows:
    """Training rows: one per user with a target, the newest ``width`` items of their sequence."""

    def __init__(self, items: NDArray[np.int64], ends: NDArray[np.int64], lengths: NDArray[np.int64], width: int) -> None:
        self.items, self.ends, self.lengths, self.width = items, ends, lengths, width

    def __len__(self) -> int:
        return len(self.ends)

    def gather(self, index: NDArray[Any]) -> dict[str, NDArray[Any]]:
        return {"seq": padded(self.items, self.ends[index], self.lengths[index], self.width)}

    def epoch(self, epoch: int) -> _SequenceRows:
        return self


# -- item features ----------------------------------------------------------------------------


def encode_item_features(data: Interactions, features: list[str], owner: str) -> tuple[NDArray[np.int64], dict[str, Any]]:
    """Item feature columns as rows of one feature embedding table (0 = padding).

    Returns ``(rows, layout)``: ``rows[i]`` holds item ``i``'s rows, side by
    side per feature (a categorical feature one column, a list feature such as
    genres several); ``layout`` is ``{"fields": [[name, start, stop], ...],
    "n_rows": table rows}``. Numeric and text columns are refused.
    """
    parts: list[NDArray[np.int64]] = []
    fields: list[list[Any]] = []
    offset, col = 1, 0
    for name in features:
        values, kind = _series(data, FieldSpec("item", name))
        k, enc, n_cat = _encode_one(values, kind, FieldSpec("item", name))
        if k == "numeric" or kind == "text":
            raise ParameterError(
                f"The 'item_features' parameter of {owner} names {name!r}, a {kind} column; "
                "expected categorical or list columns (such as genres)"
            )
        mat = np.asarray(enc, dtype=np.int64).reshape(data.n_items, -1)
        parts.append(np.where(mat > 0, mat + offset - 1, 0))
        fields.append([name, col, col + mat.shape[1]])
        col += mat.shape[1]
        offset += n_cat
    rows = np.hstack(parts) if parts else np.zeros((data.n_items, 0), dtype=np.int64)
    return np.ascontiguousarray(rows), {"fields": fields, "n_rows": offset}


# -- the network's shared part -------------------------------------------------------------------


def _torch_net_base() -> Any:
    import torch
    from torch import nn

    class SequenceNet(nn.Module):
        """Item table (tied input / output embeddings plus feature embeddings), losses and scoring.

        Subclasses implement ``encode(seq) -> (batch, length, dim)`` for
        left-padded sequences of table rows (0 = padding).
        """

        def __init__(
            self,
            n_items: int,
            dim: int,
            loss: str,
            n_negatives: int,
            gbce_t: float,
            feature_rows: NDArray[np.int64],
            feature_layout: dict[str, Any],
            history_mean: bool = False,
            set_loss: float = 0.0,
        ) -> None:
            super().__init__()
            self.n_items, self.dim, self.loss_kind, self.n_negatives = n_items, dim, loss, n_negatives
            self.set_loss = float(set_loss)
            self.item_emb = nn.Embedding(n_items + 1, dim, padding_idx=0)
            nn.init.normal_(self.item_emb.weight, std=dim**-0.5)
            with torch.no_grad():
                self.item_emb.weight[0].zero_()
            self.fields = [(int(a), int(b)) for _, a, b in feature_layout["fields"]]
            self.feature_emb: nn.Embedding | None = None
            if self.fields:
                self.feature_emb = nn.Embedding(int(feature_layout["n_rows"]), dim, padding_idx=0)
                nn.init.normal_(self.feature_emb.weight, std=dim**-0.5)
                with torch.no_grad():
                    self.feature_emb.weight[0].zero_()
                rows = np.vstack([np.zeros((1, feature_rows.shape[1]), np.int64), feature_rows])  # padding row first
                self.register_buffer("feature_rows", torch.from_numpy(rows), persistent=False)
            # gSASRec's beta: the positive's log-probability weight for the sampling rate of the negatives
            alpha = min(1.0, n_negatives / max(1, n_items - 1))
            self.beta = alpha * (gbce_t * (1.0 - 1.0 / alpha) + 1.0 / alpha)
            if history_mean:  # a buffer, so that a saved network without the term refuses to load with it
                self.register_buffer("history_scale", torch.tensor([float(dim) ** 0.5]))  # 1-d: artifacts keep no 0-d arrays

        def item_table(self) -> torch.Tensor:
            """(n_items + 1, dim): row r is item r - 1 (row 0 padding): id embedding plus feature embeddings."""
            table = self.item_emb.weight
            if self.feature_emb is None:
                return table
            rows: Any = self.feature_rows
            emb = self.feature_emb(rows)  # (n_items + 1, width, dim); padding rows are zero
            present = (rows > 0).to(emb.dtype)
            for a, b in self.fields:  # mean over a field's values, summed over fields
                n = present[:, a:b].sum(1, keepdim=True).clamp(min=1.0)
                table = table + emb[:, a:b].sum(1) / n
            return table

        def embed(self, seq: torch.Tensor) -> torch.Tensor:
            """Input embeddings of a batch of sequences (features included)."""
            if self.feature_emb is None:
                return self.item_emb(seq)
            return torch.nn.functional.embedding(seq, self.item_table())

        def encode(self, seq: torch.Tensor) -> torch.Tensor:
            """(batch, length, dim) encodings of left-padded sequences of table rows."""
            raise NotImplementedError

        def represent(self, seq: torch.Tensor) -> torch.Tensor:
            """``encode(seq)`` plus, with ``history_mean``, the running mean of the input embeddings
            (items read so far, padding left out) times ``sqrt(dim)``: (batch, length, dim)."""
            h = self.encode(seq)
            scale: Any = getattr(self, "history_scale", None)
            if scale is None:
                return h
            e = self.embed(seq)
            n = (seq > 0).to(e.dtype).cumsum(1).clamp(min=1.0)[..., None]
            return h + scale.to(e.dtype) * e.cumsum(1) / n

        def last(self, seq: torch.Tensor) -> torch.Tensor:
            """The encoding at the last position (the sequence's next-item query), (batch, dim)."""
            return self.represent(seq)[:, -1, :]

        def forward(self, seq: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
            """Mean next-item loss of sequences of ``max_len + 1`` rows: inputs ``seq[:, :-1]``, targets
            ``seq[:, 1:]``; in training, plus ``set_loss`` times the set-completion loss of the rows."""
            inputs, targets = seq[:, :-1], seq[:, 1:]
            h = self.represent(inputs)
            mask = (targets > 0) & (inputs > 0)
            loss, penalty = self._weighted_loss(h[mask], targets[mask])  # positions with an item and a next item
            if self.training and self.set_loss > 0:  # every process of a DDP step gets here (its all-reduce)
                loss = loss + self.set_loss * self._set_completion_loss(seq)
            return loss, penalty

        def _weighted_loss(self, h: torch.Tensor, pos: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
            """``_loss`` of queries ``h`` and targets ``pos`` weighted by this process' share (torchrun);
            0 (still joined to the graph) when there are none."""
            share = self._process_share(len(pos), h.device)  # every process calls it: an all-reduce
            if len(pos) == 0:
                return h.sum() * 0.0, torch.zeros((), device=h.device)
            loss, penalty = self._loss(h, pos, h.device)
            return (loss if share is None else loss * share), penalty

        def _set_completion_loss(self, seq: torch.Tensor) -> torch.Tensor:
            """Every item of the sequences predicted from ``sqrt(dim)`` times the mean embedding of the
            other items of its sequence (leave-one-out over the set, order ignored), with the model's loss."""
            e = self.embed(seq)
            real = seq > 0
            n = real.sum(1, keepdim=True)
            others = (e.sum(1, keepdim=True) - e) / (n - 1).clamp(min=1).to(e.dtype)[..., None]
            keep = real & (n > 1)
            return self._weighted_loss(float(self.dim) ** 0.5 * others[keep], seq[keep])[0]

        def _process_share(self, n: int, device: torch.device) -> torch.Tensor | None:
            """Under torchrun, the weight of this process' mean loss: ``world * n / (positions of all processes)``.

            The processes' batches hold different numbers of positions, and DDP
            averages their gradients: so weighted, that average is the gradient
            of the mean over all positions of the global batch, as in one
            process. None (no weight) outside a distributed training step.
            """
            import torch.distributed as dist

            if not self.training or not dist.is_available() or not dist.is_initialized() or dist.get_world_size() < 2:
                return None
            total = torch.tensor([float(n)], dtype=torch.float64, device=device)
            dist.all_reduce(total)
            return (dist.get_world_size() * n / total.clamp(min=1.0)).float()[0]

        def _loss(self, h: torch.Tensor, pos: torch.Tensor, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
            """Mean next-item loss of the encodings ``h`` of positions whose next items are ``pos``."""
            zero = torch.zeros((), device=device)
            table = self.item_table()
            if self.loss_kind == "softmax":
                logits = h @ table.T
                logits[:, 0] = float("-inf")  # the padding row is never a next item
                return torch.nn.functional.cross_entropy(logits.float(), pos), zero
            neg = torch.randint(1, self.n_items + 1, (len(pos), self.n_negatives), device=device)
            pos_logit = (h * table[pos]).sum(-1, keepdim=True)
            neg_logit = torch.einsum("nd,nkd->nk", h, table[neg])
            hit = neg == pos[:, None]  # an accidental draw of the next item is not a negative
            if self.loss_kind == "sampled":
                logits = torch.cat([pos_logit, neg_logit.masked_fill(hit, float("-inf"))], 1).float()
                return torch.nn.functional.cross_entropy(logits, torch.zeros(len(pos), dtype=torch.long, device=device)), zero
            # gBCE: -beta * log sigmoid(s+) - sum log(1 - sigmoid(s-)), averaged like BCE over the 1 + k logits
            sp = torch.nn.functional.softplus
            neg_loss = (sp(neg_logit.float()) * (~hit)).sum(1)
            per = self.beta * sp(-pos_logit.float()[:, 0]) + neg_loss
            return (per / (1 + self.n_negatives)).mean(), zero

    return SequenceNet


_NET_BASE: Any = None


def sequence_net_base() -> Any:
    """The torch base class of the sequential networks (built on first use: torch is imported lazily)."""
    global _NET_BASE
    if _NET_BASE is None:
        _NET_BASE = _torch_net_base()
    return _NET_BASE


def _available_memory(device: Any) -> int | None:
    """Bytes free for a batch's tensors on ``device`` (None: unknown)."""
    if device.type == "cuda":
        import torch

        return int(torch.cuda.mem_get_info(device)[0])
    try:
        return int(os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"))
    except (AttributeError, ValueError, OSError):
        return None


def ndcg_of_targets(scores: Any, targets: Any, k: int = 10) -> Any:
    """NDCG@k of one relevant item per row: ``1 / log2(rank + 2)`` when its rank (0-based, among
    strictly higher scores) is below ``k``, else 0 (torch or numpy arrays).

    Examples
    --------
    >>> ndcg_of_targets(np.array([[0.1, 0.9, 0.5], [0.3, 0.2, 0.1]]), np.array([2, 0])).tolist()
    [0.6309297535714575, 1.0]
    """
    rows = np.arange(len(targets)) if isinstance(scores, np.ndarray) else None
    if rows is None:
        import torch

        own = scores.gather(1, targets[:, None])
        rank = (scores > own).sum(1).double()
        return torch.where(rank < k, 1.0 / torch.log2(rank + 2.0), torch.zeros_like(rank))
    own = scores[rows, targets][:, None]
    rank = (scores > own).sum(1).astype(np.float64)
    return np.where(rank < k, 1.0 / np.log2(rank + 2.0), 0.0)


# -- the recommender ------------------------------------------------------------------------------


class SequentialRecommender(EmbeddingRecommender):
    """Base of the sequential next-item models (see :class:`~recsys.models.SASRec` for the shared parameters)."""

    _no_explanation: ClassVar[str] = (
        "its score is the item's embedding times a representation the network computes from the whole ordered "
        "sequence (attention or recurrence mixes the positions); no part of it belongs to one history item"
    )
    _state_spec: ClassVar[dict[str, Spec]] = {
        "user_vectors_": Array(shape=("n_users", "dim")),
        "feature_rows_": Array(shape=("n_items", "feature_width"), dtype=("int64",)),
        "feature_layout_": Json(types=(dict,)),  # checked in _check_loaded_state
        "state_dict_": ArrayDict(),  # shapes checked against the network in _prepare
        "train_log_": Json(types=(dict,)),
    }

    def __init__(
        self,
        max_len: int = 50,
        dim: int = 64,
        n_layers: int = 2,
        dropout: float = 0.2,
        loss: str = "softmax",
        n_negatives: int = 256,
        gbce_t: float = 0.75,
        item_features: list[str] | None = None,
        history_mean: bool = True,
        set_loss: float = 0.0,
        learning_rate: float = 1e-3,
        weight_decay: float = 0.0,
        batch_size: int = 128,
        epochs: int = 100,
        patience: int = 5,
        validation_users: int = 10_000,
        refit: bool = False,
        time_budget: float | None = None,
        seed: int = 0,
        device: str = "auto",
        num_threads: int | None = None,
        show_progress: bool | None = None,
    ) -> None:
        self.max_len = max_len
        self.dim = dim
        self.n_layers = n_layers
        self.dropout = dropout
        self.loss = loss
        self.n_negatives = n_negatives
        self.gbce_t = gbce_t
        self.item_features = item_features
        self.history_mean = history_mean
        self.set_loss = set_loss
        self.learning_rate = learning_rate
        self.weight_decay = weight_decay
        self.batch_size = batch_size
        self.epochs = epochs
        self.patience = patience
        self.validation_users = validation_users
        self.refit = refit
        self.time_budget = time_budget
        self.seed = seed
        self.device = device
        self.num_threads = num_threads
        self.show_progress = show_progress

    # -- hooks -------------------------------------------------------------------------------

    @abstractmethod
    def _build_module(self, n_items: int, feature_rows: NDArray[np.int64], layout: dict[str, Any]) -> Any:
        """A fresh network (seeded by the caller) over ``n_items`` items and the item feature rows."""

    def _net_args(self, n_items: int, feature_rows: NDArray[np.int64], layout: dict[str, Any]) -> dict[str, Any]:
        """The keyword arguments of the shared network base."""
        return dict(
            n_items=n_items, dim=self.dim, loss=self.loss, n_negatives=self.n_negatives, gbce_t=self.gbce_t,
            feature_rows=feature_rows, feature_layout=layout, history_mean=self.history_mean, set_loss=self.set_loss,
        )  # fmt: skip

    # -- parameters ----------------------------------------------------------------------------

    def _validate_params(self) -> None:
        owner = type(self).__name__
        check_int(owner, "max_len", self.max_len, low=1)
        check_int(owner, "dim", self.dim, low=1)
        check_int(owner, "n_layers", self.n_layers, low=1)
        check_float(owner, "dropout", self.dropout, low=0.0, high=1.0, high_open=True)
        check_choice(owner, "loss", self.loss, LOSSES)
        check_int(owner, "n_negatives", self.n_negatives, low=1)
        check_float(owner, "gbce_t", self.gbce_t, low=0.0, high=1.0)
        if self.item_features is not None and (
            isinstance(self.item_features, str)
            or not isinstance(self.item_features, (list, tuple))
            or not all(isinstance(f, str) for f in self.item_features)
            or len(set(self.item_features)) != len(self.item_features)
        ):
            raise ParameterError(
                f"The 'item_features' parameter of {owner} must be None or a list of distinct item feature "
                f"column names such as ['genres']. Got {self.item_features!r} instead."
            )
        check_bool(owner, "history_mean", self.history_mean)
        check_float(owner, "set_loss", self.set_loss, low=0.0)
        check_float(owner, "learning_rate", self.learning_rate, low=0.0, low_open=True)
        check_float(owner, "weight_decay", self.weight_decay, low=0.0)
        check_int(owner, "batch_size", self.batch_size, low=1)
        check_int(owner, "epochs", self.epochs, low=1)
        check_int(owner, "patience", self.patience, low=1)
        check_int(owner, "validation_users", self.validation_users, low=0)
        check_bool(owner, "refit", self.refit)
        if self.time_budget is not None:
            check_float(owner, "time_budget", self.time_budget, low=0.0, low_open=True)
        check_int(owner, "seed", self.seed, low=0)
        if getattr(self, "_loading", False):  # a saved CUDA model loads on the CPU (with a warning, in _prepare)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                resolve_device(self.device, owner, strict=False)
        else:
            resolve_device(self.device, owner)
        if self.num_threads is not None:
            check_int(owner, "num_threads", self.num_threads, low=1)
        check_bool(owner, "show_progress", self.show_progress, optional=True)

    def _validate_loaded_params(self) -> None:
        self._loading = True
        try:
            self._validate_params()
        finally:
            del self._loading

    # -- fitting ---------------------------------------------------------------------------------

    def _check_softmax_memory(self, n_rows: int, n_items: int) -> None:
        """Refuse a full softmax whose logits (and their gradient) would not fit in the memory available."""
        if self.loss != "softmax":
            return
        need = 3 * 4 * min(self.batch_size, max(1, n_rows)) * self.max_len * (n_items + 1)
        free = _available_memory(resolve_device(self.device, type(self).__name__))
        if free is not None and need > _SOFTMAX_MEMORY_SHARE * free:
            raise ParameterError(
                f"{type(self).__name__}(loss='softmax') needs about {need / 2**30:.1f} GiB for the logits of one batch "
                f"(batch_size {self.batch_size} x max_len {self.max_len} x {n_items} items) and {free / 2**30:.1f} GiB "
                "is available: use loss='sampled' (sampled softmax with n_negatives items) or loss='gbce', "
                "or a smaller batch_size / max_len"
            )

    def _fit(self, data: Interactions) -> None:
        owner = type(self).__name__
        if data.nnz == 0:
            raise DataError(f"{owner} needs at least one interaction")
        indptr, items = user_sequences(data, owner)
        lengths = np.diff(indptr)
        feature_rows, layout = encode_item_features(data, list(self.item_features or []), owner)
        width = self.max_len + 1
        # validation: the last item of up to validation_users users with at least 3 items (2 left to train on)
        cand = np.flatnonzero(lengths >= 3)
        n_val = min(self.validation_users, len(cand))
        val_users = np.sort(np.random.default_rng([self.seed, 5]).choice(cand, size=n_val, replace=False)) if n_val else cand[:0]
        fit_ends = indptr[1:].copy()
        fit_ends[val_users] -= 1
        fit_lengths = fit_ends - indptr[:-1]
        has_target = fit_lengths >= 2
        rows = _SequenceRows(items, fit_ends[has_target], np.minimum(fit_lengths[has_target], width), width)
        if len(rows) == 0:
            raise DataError(f"{owner} needs a user with at least two interactions (a next item to learn from); none has")
        self._check_softmax_memory(len(rows), data.n_items)
        seen = data.matrix("csr", "binary")
        score = None
        if n_val:
            score = self._validation_score(items, fit_ends[val_users], np.minimum(fit_lengths[val_users], self.max_len), items[indptr[1:][val_users] - 1], seen[val_users])
        module, log = self._train(data.n_items, feature_rows, layout, rows, score, indptr, lengths)
        self.feature_rows_ = feature_rows
        self.feature_layout_ = layout
        self.state_dict_ = {k: v.detach().cpu().numpy().copy() for k, v in module.state_dict().items()}
        self.train_log_ = log
        self._module: Any = module.eval()
        self._device = module.item_emb.weight.device
        self._infer: Any = None
        self.user_vectors_ = self._encode(items, indptr[1:], np.minimum(lengths, self.max_len))

    def _validation_score(
        self,
        items: NDArray[np.int64],
        ends: NDArray[np.int64],
        lengths: NDArray[np.int64],
        targets: NDArray[np.int64],
        seen: Any,
    ) -> Any:
        """NDCG@10 of each validation user's held-out last item, ranked among all items but the user's
        earlier ones (the full-ranking leave-one-out protocol), as the trainer's early-stopping score."""
        import torch

        seqs = padded(items, ends, lengths, self.max_len)
        targets_t = torch.from_numpy(targets + 1)
        seen_rows = np.repeat(np.arange(seen.shape[0]), np.diff(seen.indptr))
        seen_cols = seen.indices.astype(np.int64) + 1
        keep = seen_cols != targets_t.numpy()[seen_rows]  # the target itself is in the full data's seen items

        def score(module: Any) -> float:
            was = module.training
            module.eval()
            total = 0.0
            dev = module.item_emb.weight.device
            with torch.inference_mode():
                table = module.item_table()
                for s in range(0, len(seqs), _INFER_ROWS):
                    q = module.last(torch.from_numpy(seqs[s : s + _INFER_ROWS]).to(dev))
                    sc = (q @ table.T).float()
                    sc[:, 0] = float("-inf")
                    sel = (seen_rows >= s) & (seen_rows < s + _INFER_ROWS) & keep
                    sc[torch.from_numpy(seen_rows[sel] - s).to(dev), torch.from_numpy(seen_cols[sel]).to(dev)] = float("-inf")
                    total += float(ndcg_of_targets(sc, targets_t[s : s + _INFER_ROWS].to(dev)).sum())
            module.train(was)
            return total / max(1, len(seqs))

        return score

    def _train(
        self,
        n_items: int,
        feature_rows: NDArray[np.int64],
        layout: dict[str, Any],
        rows: _SequenceRows,
        score: Any,
        indptr: NDArray[np.int64],
        lengths: NDArray[np.int64],
    ) -> tuple[Any, dict[str, Any]]:
        import torch

        config = TrainConfig(
            max_epochs=self.epochs,
            batch_size=self.batch_size,
            learning_rate=self.learning_rate,
            weight_decay=self.weight_decay,
            patience=self.patience,
            time_budget=self.time_budget,
            seed=self.seed,
            device=self.device,
            num_threads=self.num_threads,
            show_progress=self.show_progress,
            desc=type(self).__name__,
        )

        def build() -> Any:
            torch.manual_seed(self.seed)
            return self._build_module(n_items, feature_rows, layout)

        start = time.perf_counter()
        with torch_threads(self.num_threads), torch.random.fork_rng(devices=[]):
            module, result = Trainer(config).fit(build(), rows, score=score, score_name="val_ndcg@10")
        log = result.to_dict()
        log["best_val_ndcg@10"] = log.pop("best_auc")
        left = None if self.time_budget is None else self.time_budget - (time.perf_counter() - start)
        if self.refit and score is not None and result.best_epoch >= 1 and (left is None or left > 0):
            # the validation users' last items join the training rows for the chosen number of epochs
            width = self.max_len + 1
            full = lengths >= 2
            all_rows = _SequenceRows(rows.items, indptr[1:][full], np.minimum(lengths[full], width), width)
            config.max_epochs, config.time_budget = result.best_epoch, left
            with torch_threads(self.num_threads), torch.random.fork_rng(devices=[]):
                module, again = Trainer(config).fit(build(), all_rows)
            log["refit_epochs"] = again.epochs
            log["train_seconds"] += again.train_seconds
            log["train_samples"] += again.train_samples
        return module, log

    # -- state after fit / load ----------------------------------------------------------------

    def _check_loaded_state(self, state: dict[str, Any], where: Where, dims: dict[str, int] | None = None) -> dict[str, int]:
        bound = super()._check_loaded_state(state, where, dims)
        layout: Any = state.get("feature_layout_")
        rows = np.asarray(state["feature_rows_"])
        ok = isinstance(layout, dict) and set(layout) == {"fields", "n_rows"} and type(layout["n_rows"]) is int
        ok = ok and isinstance(layout["fields"], list)
        if ok:
            # fields [name, start, stop] tile the columns of feature_rows_ in order; rows lie in the table
            good = [f for f in layout["fields"] if isinstance(f, list) and len(f) == 3 and type(f[1]) is int and type(f[2]) is int]
            edges = [0] + [c for f in good for c in f[1:]] + [rows.shape[1]]
            ok = len(good) == len(layout["fields"]) and all(edges[j] == edges[j + 1] for j in range(0, len(edges), 2))
            ok = ok and all(f[1] < f[2] for f in good)
            ok = ok and (rows.size == 0 or (0 <= int(rows.min()) and int(rows.max()) < layout["n_rows"]))
        if not ok:
            raise ArtifactError(f"{where('feature_layout_')}: field 'feature_layout_' does not describe feature_rows_")
        return bound

    def _load_module_state(self, module: Any) -> None:
        """Load ``state_dict_`` into a freshly built network, refusing entries it does not have the shape of."""
        import torch

        want = module.state_dict()
        if set(want) != set(self.state_dict_):
            raise ArtifactError(
                f"state_dict_ holds {sorted(set(self.state_dict_) - set(want))[:4]} and lacks {sorted(set(want) - set(self.state_dict_))[:4]} "
                f"of the {type(self).__name__} network its parameters describe"
            )
        for k, v in self.state_dict_.items():
            if tuple(v.shape) != tuple(want[k].shape):
                raise ArtifactError(f"state_dict_ entry {k!r} has shape {tuple(v.shape)}; the network needs {tuple(want[k].shape)}")
        module.load_state_dict({k: torch.from_numpy(np.array(v, copy=True)) for k, v in self.state_dict_.items()})

    def _restore_state(self, state: dict[str, Any]) -> None:
        self._module = None
        super()._restore_state(state)

    def _prepare(self) -> None:
        import torch

        if getattr(self, "_module", None) is None:  # after load
            self._device = resolve_device(self.device, type(self).__name__, strict=False)
            with torch.random.fork_rng(devices=[]):
                module = self._build_module(self.n_items_, np.asarray(self.feature_rows_, np.int64), self.feature_layout_)
            self._load_module_state(module)
            self._module = module.to(self._device).eval()
            self._infer = None
        if np.shape(self.user_vectors_)[1] != self.dim:
            raise ArtifactError(f"{type(self).__name__}: user_vectors_ have dimension {np.shape(self.user_vectors_)[1]}; dim is {self.dim}")
        with torch_threads(self.num_threads), torch.inference_mode():
            table = self._inference_module().item_table()
        self._item_vecs = np.ascontiguousarray(table[1:].detach().float().cpu().numpy())
        super()._prepare()

    @property
    def module_(self) -> Any:
        """The trained torch network (on the model's device, eval mode)."""
        self._check_fitted()
        return self._module

    @property
    def train_result_(self) -> dict[str, Any]:
        """The training log: per-epoch loss and validation NDCG@10, best epoch, stop reason."""
        self._check_fitted()
        return dict(self.train_log_)

    def _inference_module(self) -> Any:
        """On CPU a float64 twin of the network: a sequence's vector then does not depend on the other
        sequences of its batch, so a fold-in of a training user's history gives their fitted vector."""
        if self._infer is None:
            self._infer = copy.deepcopy(self._module).double().eval() if self._device.type == "cpu" else self._module.eval()
        return self._infer

    # -- ONNX export ------------------------------------------------------------------------------

    # one (B, n_items) output, not one output per column
    _onnx_column_outputs: ClassVar[bool] = False

    def export_onnx(self, path: str | os.PathLike[str]) -> tuple[Path, Path]:
        """Write the model as a self-contained ONNX graph to ``path`` and its input contract to ``<path>.json``.

        The graph scores every item as the next one of a history: inputs
        ``history`` (int64, batch x any length: item row indices, RIGHT-aligned,
        the newest item in the last column, padding before it) and
        ``history_length`` (int64, batch), output ``scores`` (float32, batch x
        n_items), the scores :meth:`recommend_history` ranks by. Only the
        newest ``max_len`` items of a history are read, as the model truncates.
        The weights and item feature tables are constants inside the graph; it
        keeps no per-user state. The JSON file holds the item id map, the
        padding convention, ``max_length``, the inputs and outputs and the
        items never to recommend: see the README, "Serving deep models without
        Python (ONNX)". Both files are written atomically, after the graph is
        checked against the torch network on random histories.

        Returns
        -------
        (graph path, JSON path)

        Raises
        ------
        NotFittedError
            The model is not fitted.
        ParameterError
            ``path`` cannot be written.
        MissingDependencyError
            ``onnx`` / ``onnxruntime`` are missing (``pip install "recsys[onnx]"``).

        Examples
        --------
        >>> import json, pathlib, tempfile
        >>> from recsys.datasets import synthetic
        >>> from recsys.models import GRU4Rec
        >>> model = GRU4Rec(max_len=10, dim=8, epochs=1, num_threads=1, show_progress=False).fit(synthetic(50, 30, 600, seed=1))
        >>> graph, spec = model.export_onnx(pathlib.Path(tempfile.mkdtemp()) / "gru4rec.onnx")
        >>> meta = json.loads(spec.read_text())
        >>> [i["name"] for i in meta["inputs"]], meta["outputs"][0]["shape"], meta["history"]["alignment"]
        (['history', 'history_length'], ['batch', 30], 'right')
        """
        from recsys.models.deep._onnx import export_onnx

        return export_onnx(self, path)

    def _onnx_network(self) -> Any:
        """The float32 CPU module exported: ``(history, history_length) -> (B, n_items)`` scores."""
        from recsys.models.deep._onnx import PaddedSequence, cpu_copy

        return PaddedSequence(cpu_copy(self), self.max_len)

    def _onnx_outputs(self) -> dict[str, str]:
        return {
            "scores": "the next-item score of every item (column j: item_ids[j]) for the history, the dot product "
            "of the sequence's vector with the item's; higher is better: leave out the user's seen items and "
            "never_recommended_items, then take the top k"
        }

    def _onnx_inputs(self) -> list[dict[str, Any]]:
        from recsys.models.deep._onnx import sequence_inputs

        return sequence_inputs(self)

    def _onnx_sample(self, n: int) -> dict[str, NDArray[Any]]:
        from recsys.models.deep._onnx import sequence_sample

        return sequence_sample(self, n)

    def _onnx_contract(self) -> dict[str, Any]:
        from recsys.models.deep._onnx import sequence_contract

        return sequence_contract(self)

    # -- vectors ----------------------------------------------------------------------------------

    def _encode(self, items: NDArray[np.int64], ends: NDArray[np.int64], lengths: NDArray[np.int64]) -> NDArray[np.float32]:
        """Query vectors of sequences ``items[end - length:end]`` (zero for an empty one)."""
        import torch

        out = np.zeros((len(ends), self.dim), dtype=np.float32)
        module = self._inference_module()
        dev = module.item_emb.weight.device
        nonempty = np.flatnonzero(lengths > 0)
        with torch_threads(self.num_threads), torch.inference_mode():
            for s in range(0, len(nonempty), _INFER_ROWS):
                sel = nonempty[s : s + _INFER_ROWS]
                seq = torch.from_numpy(padded(items, ends[sel], lengths[sel], self.max_len)).to(dev)
                out[sel] = module.last(seq).float().cpu().numpy()
        return out

    def _user_vectors(self, user_idx: NDArray[np.int32]) -> NDArray[np.float32]:
        return np.asarray(self.user_vectors_)[user_idx]

    def _item_vectors(self) -> NDArray[np.float32]:
        return self._item_vecs

    def _history_vector(
        self, item_idx: NDArray[np.int32], ratings: NDArray[np.float32] | None, timestamps: NDArray[Any] | None
    ) -> NDArray[Any]:
        """The encoding of a new user's sequence: ``items`` in time order (equal times, and all items
        without ``timestamps``, in the order given), the newest ``max_len`` of those the model has
        learned (items without train interactions have no trained embedding and are left out)."""
        idx = np.asarray(item_idx, dtype=np.int64)
        if timestamps is not None:
            idx = idx[np.argsort(np.asarray(timestamps), kind="stable")]
        idx = idx[~self._never[idx]]
        n = min(len(idx), self.max_len)
        return self._encode(idx, np.array([len(idx)]), np.array([n]))[0]


def check_heads(owner: str, dim: int, n_heads: Any) -> int:
    """``n_heads`` checked to be an int >= 1 dividing ``dim``."""
    n = check_int(owner, "n_heads", n_heads, low=1)
    if dim % n:
        raise ParameterError(f"The 'n_heads' parameter of {owner} must divide dim={dim}. Got {n_heads!r} instead.")
    return n


__all__ = ["LOSSES", "SequentialRecommender", "check_heads", "encode_item_features", "ndcg_of_targets", "padded", "sequence_net_base", "user_sequences"]
