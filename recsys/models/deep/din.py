"""DIN (Zhou et al. 2018): target attention over each row's leak-free behaviour history."""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
import torch
from numpy.typing import NDArray
from torch import nn

from recsys._state_spec import Spec
from recsys._utils.params import check_bool, check_choice, check_int
from recsys.errors import NotSupportedError
from recsys.models._explain import Explanation
from recsys.models.deep._base import DeepRecommender, _check_units
from recsys.models.deep._layers import FieldEmbedding, activation, dnn_decay_groups, fm_term, mlp
from recsys.models.deep.features import FieldTables
from recsys.models.deep.trainer import torch_threads


def packed_positions(end: torch.Tensor, length: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``(row, pos)`` of every history entry of a batch: row ``r`` owns positions
    ``end[r] - length[r] .. end[r] - 1`` of the history store, in time order.

    Examples
    --------
    >>> packed_positions(torch.tensor([5, 9, 3]), torch.tensor([2, 0, 3]))
    (tensor([0, 0, 2, 2, 2]), tensor([3, 4, 0, 1, 2]))
    """
    n = int(length.sum())
    rows = torch.arange(len(length), device=length.device)
    row = torch.repeat_interleave(rows, length, output_size=n)
    first = torch.cumsum(length, 0) - length
    pos = (end - length - first).index_select(0, row) + torch.arange(n, device=length.device)
    return row, pos


class DINNet(nn.Module):
    """Deep Interest Network.

    An item is represented by the concatenation of its item-side fields (item
    id, categorical item features such as its first genre, pooled multi-valued
    ones such as its genre list). The activation unit scores each history
    item ``h`` against the target ``t`` from ``[t, h, t - h, t * h]`` (an MLP
    ending in one unit); the interest vector is the score-weighted sum of the
    history (scores not normalised, as in the paper, unless ``softmax``). The
    DNN sees the user fields, the target, the interest vector and the numeric
    features; with ``linear`` a bias and first-order weights, with ``fm``
    DeepFM's pairwise term over user fields, target and interest are added to
    its logit.

    Histories are *packed*: a batch holds only each row's real history
    entries (rows with an empty history get a zero interest vector), so there
    is no padding to mask and no work spent on it. The first attention layer
    is linear in ``[t, h, t - h, t * h]``, so its ``h`` part is computed once
    per distinct item of the batch and its ``t`` part once per row; only the
    ``t * h`` part is computed per history entry.
    """

    hist_items: torch.Tensor

    def __init__(
        self,
        tables: FieldTables,
        history_items: NDArray[np.int64],
        dim: int,
        hidden: tuple[int, ...],
        act: str,
        dropout: float,
        l2_embedding: float,
        att_units: tuple[int, ...],
        att_act: str,
        softmax: bool,
        linear: bool = False,
        fm: bool = False,
        prior: bool = False,
        head: bool = True,
    ) -> None:
        super().__init__()
        if prior:
            # a Pipeline ranker: the retriever's standardised score enters the logit with a learned weight
            self.prior_weight = nn.Parameter(torch.ones(()))
        self.emb = FieldEmbedding(tables, dim, first_order=linear, numeric_vectors=False)
        self.linear = linear
        self.fm = fm
        if linear:
            self.bias = nn.Parameter(torch.zeros(()))
        self.register_buffer("hist_items", torch.from_numpy(np.array(history_items, dtype=np.int64)), persistent=False)
        self.item_dim = dim * self.emb.n_item_fields
        user_dim = dim * self.emb.n_user_fields
        self.att_first = nn.Linear(4 * self.item_dim, att_units[0])
        self.att_act = activation(att_act, att_units[0])
        self.att_tail = mlp(att_units[0], att_units[1:], att_act, 0.0)
        self.att_out = nn.Linear(att_units[-1], 1)
        self.rep_dim = user_dim + 2 * self.item_dim + self.emb.n_num  # the DNN's input width
        if head:  # without: the bottom of a multi-task network, which has its own towers
            self.dnn = mlp(self.rep_dim, hidden, act, dropout)
            self.out = nn.Linear(hidden[-1], 1)
        self.softmax = softmax
        self.l2_embedding = l2_embedding

    def parameter_groups(self, weight_decay: float) -> list[dict[str, Any]]:
        """L2 (``weight_decay``) on the DNN weights only (not the attention unit's); embeddings have their
        own per-batch penalty."""
        return dnn_decay_groups(self, weight_decay)

    def attention(self, target: torch.Tensor, reps: torch.Tensor, hist: torch.Tensor, row: torch.Tensor) -> torch.Tensor:
        """Interest vectors (B, D): row ``row[p]`` attends to history item ``hist[p]`` (a row of ``reps``)."""
        pooled = target.new_zeros(target.shape)
        if len(row) == 0:
            return pooled
        score, keys = self.attention_weights(target, reps, hist, row)
        return pooled.index_add_(0, row, score.unsqueeze(-1) * keys)

    def attention_weights(
        self, target: torch.Tensor, reps: torch.Tensor, hist: torch.Tensor, row: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """The weight of every history entry ``p`` (row ``row[p]``, item ``hist[p]``) and its representation."""
        d = self.item_dim
        w = self.att_first.weight
        wq, wk, wd, wp = w[:, :d], w[:, d : 2 * d], w[:, 2 * d : 3 * d], w[:, 3 * d :]
        # W [t, h, t - h, t * h] = (Wq + Wd) t + (Wk - Wd) h + Wp (t * h): the h part once per item of
        # ``reps``, the t part once per row; only the t * h part is computed per history entry.
        h_part = reps @ (wk - wd).T
        t_part = torch.addmm(self.att_first.bias, target, (wq + wd).T)
        keys = reps.index_select(0, hist)
        t = target.index_select(0, row)
        a = torch.addmm(h_part.index_select(0, hist) + t_part.index_select(0, row), t * keys, wp.T)
        score = self.att_out(self.att_tail(self.att_act(a))).squeeze(-1)
        if self.softmax:
            top = torch.full((len(target),), float("-inf"), dtype=score.dtype, device=score.device)
            top = top.scatter_reduce(0, row, score, reduce="amax")
            e = torch.exp(score - top.index_select(0, row))
            den = e.new_zeros(len(target)).index_add_(0, row, e)
            score = e / den.index_select(0, row)
        return score, keys

    def history_attention(self, item: torch.Tensor, end: torch.Tensor, length: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """For rows of target ``item`` and histories (``end``, ``length``): every history entry's item
        and its attention weight, rows one after the other."""
        row, pos = packed_positions(end, length)
        hist = self.hist_items.index_select(0, pos)
        reps, _ = self.item_reps(None)
        if len(row) == 0:
            return hist, reps.new_zeros(0)
        weights, _ = self.attention_weights(reps.index_select(0, item), reps, hist, row)
        return hist, weights

    def item_reps(self, items: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
        """(len(items), D) item representations and their first-order weights (every item's for ``None``)."""
        fi, first = self.emb.catalogue("item") if items is None else self.emb.side("item", items)[:2]
        return fi.flatten(1), first

    def represent(
        self, user: torch.Tensor, item: torch.Tensor, end: torch.Tensor, length: torch.Tensor
    ) -> tuple[torch.Tensor, tuple[Any, ...]]:
        """``(DNN input (B, rep_dim), state)``: user fields, target, interest vector and numeric
        features; ``state`` is what :meth:`finish` adds the FM and first-order terms from."""
        fu, first_u, sq_u = self.emb.side("user", user)
        row, pos = packed_positions(end, length)
        hist = self.hist_items.index_select(0, pos)
        b = len(user)
        n_items = self.emb.item_idx.shape[0]
        if n_items <= 4 * (b + len(hist)) and not self.emb.table.sparse:
            # small catalogue: represent every item once (cheaper than finding the distinct ones); not with
            # lazy embedding updates, whose point is a gradient over the batch's rows only
            reps, first_i = self.item_reps(None)
            t_idx, h_idx = item, hist
        else:
            uniq, inv = torch.unique(torch.cat([item, hist]), return_inverse=True)
            reps, first_i = self.item_reps(uniq)
            t_idx, h_idx = inv[:b], inv[b:]
        target = reps.index_select(0, t_idx)
        interest = self.attention(target, reps, h_idx, row)
        parts = [fu.flatten(1), target, interest]
        if self.emb.n_num:
            parts.append(self.emb.numeric(user, item).to(fu.dtype))
        return torch.cat(parts, 1), (fu, first_u, sq_u, first_i, t_idx, target, interest, item)

    def finish(
        self, logit: torch.Tensor, state: tuple[Any, ...], prior: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """``(logit + FM term + first-order terms + prior term, embedding penalty)`` (the terms ``fm``,
        ``linear`` and ``prior`` switch on)."""
        fu, first_u, sq_u, first_i, t_idx, target, interest, item = state
        b = item.shape[0]  # a traced size (ONNX export), not a constant
        if self.fm:
            # FM over the user fields, the target's fields and the interest vector cut into the same fields
            logit = logit + fm_term(torch.cat([fu, target.view(b, -1, fu.shape[2]), interest.view(b, -1, fu.shape[2])], 1))
        if self.linear:
            logit = logit + self.bias + first_u + first_i.index_select(0, t_idx)
        if prior is not None:
            logit = logit + self.prior_weight * prior.to(logit.dtype)
        if self.training:
            # L2 on the embeddings of each row's user and target item (history items are not penalised)
            penalty = self.l2_embedding * (sq_u.sum() + self.emb.squared_norm("item", item)) / b
        else:
            penalty = fu.new_zeros(())
        return logit, penalty

    def forward(
        self,
        user: torch.Tensor,
        item: torch.Tensor,
        end: torch.Tensor,
        length: torch.Tensor,
        prior: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        x, state = self.represent(user, item, end, length)
        return self.finish(self.out(self.dnn(x)).squeeze(-1), state, prior)


class DIN(DeepRecommender):
    """Deep Interest Network (Zhou et al. 2018) as a recommender, trained by the shared torch trainer.

    Each row's behaviour history is the same user's training positives
    (``rating >= label_threshold``, or every interaction in implicit mode)
    with a timestamp *strictly earlier* than the row's, the most recent
    ``max_history``: a row never sees itself, and rows sharing a timestamp
    never see each other. Sampled negatives share the history of the
    positive they were drawn for. At recommendation time the history is the
    user's whole training history; :meth:`predict_proba` with ``timestamps``
    uses the training positives strictly before each given time.

    Parameters
    ----------
    max_history : int >= 1, default 50
        Most recent history items attended to.
    attention_units : list of int, default (64, 16)
        Hidden layers of the activation unit (DeepCTR-Torch's default; the paper uses (80, 40)).
    attention_activation : {"dice", "prelu", "relu", "sigmoid"}, default "dice"
    attention_softmax : bool, default True
        Normalise the attention scores of a row with a softmax. The paper does
        not, to keep the intensity of interest, but then the interest vector
        grows with the history length, and recommendation-time rows (the whole
        history) sit beyond the training rows (histories up to their time): on
        ML-100K's temporal split the softmax raises the validation AUC by about 0.003.
    first_order : bool, default True
        Add a bias and a learned weight per field value to the DNN's logit (the
        "wide" part of Wide & Deep; the paper's DIN has none). User and item
        biases are most of the signal in rating-derived labels.
    fm : bool, default True
        Add DeepFM's pairwise term over the user fields, the target's fields and
        the interest vector (cut into the same fields), so the similarity of the
        interest to the target enters the logit directly instead of through the
        DNN alone. ``first_order=False, fm=False, attention_softmax=False`` is the paper's DIN.
    **other parameters
        As :class:`~recsys.models.DeepFM` (``activation`` is the DNN's).

    Raises
    ------
    DataError
        (at fit) The interactions have no timestamps.

    Examples
    --------
    >>> from recsys.testing import tiny_interactions
    >>> model = DIN(label_threshold=4, epochs=2, hidden_units=[16], attention_units=[8], num_threads=1,
    ...             show_progress=False).fit(tiny_interactions())
    >>> model.predict_proba([0], [2], timestamps=[1_000_000]).shape  # before any of user 0's ratings
    (1,)
    """

    _state_spec: ClassVar[dict[str, Spec]] = {}  # nothing beyond its base's state

    uses_history: ClassVar[bool] = True
    input_names: ClassVar[tuple[str, ...]] = ("user", "item", "end", "length")

    def __init__(
        self,
        label_threshold: float | None = None,
        negative_sampling: str = "uniform",
        negative_ratio: int = 4,
        features: list[str] | None = None,
        embedding_dim: int = 8,
        hidden_units: tuple[int, ...] | list[int] = (256, 128),
        activation: str = "relu",
        dropout: float = 0.0,
        l2_embedding: float = 1e-5,
        l2_dnn: float = 0.0,
        learning_rate: float = 1e-3,
        batch_size: int = 256,
        epochs: int = 10,
        patience: int = 2,
        validation_fraction: float = 0.1,
        refit: bool = True,
        time_budget: float | None = None,
        seed: int = 0,
        device: str = "auto",
        num_threads: int | None = None,
        show_progress: bool | None = None,
        lazy_embeddings: bool | None = None,
        max_history: int = 50,
        attention_units: tuple[int, ...] | list[int] = (64, 16),
        attention_activation: str = "dice",
        attention_softmax: bool = True,
        first_order: bool = True,
        fm: bool = True,
    ) -> None:
        super().__init__(
            label_threshold=label_threshold,
            negative_sampling=negative_sampling,
            negative_ratio=negative_ratio,
            features=features,
            embedding_dim=embedding_dim,
            hidden_units=hidden_units,
            activation=activation,
            dropout=dropout,
            l2_embedding=l2_embedding,
            l2_dnn=l2_dnn,
            learning_rate=learning_rate,
            batch_size=batch_size,
            epochs=epochs,
            patience=patience,
            validation_fraction=validation_fraction,
            refit=refit,
            time_budget=time_budget,
            seed=seed,
            device=device,
            num_threads=num_threads,
            show_progress=show_progress,
            lazy_embeddings=lazy_embeddings,
        )
        self.max_history = max_history
        self.attention_units = attention_units
        self.attention_activation = attention_activation
        self.attention_softmax = attention_softmax
        self.first_order = first_order
        self.fm = fm

    @property
    def max_history_len(self) -> int:
        return int(self.max_history)

    def _validate_params(self) -> None:
        super()._validate_params()
        owner = type(self).__name__
        check_int(owner, "max_history", self.max_history, low=1)
        _check_units(owner, "attention_units", self.attention_units)
        check_choice(owner, "attention_activation", self.attention_activation, ("dice", "prelu", "relu", "sigmoid"))
        for name in ("first_order", "fm", "attention_softmax"):
            check_bool(owner, name, getattr(self, name))

    def _explain(self, user_idx: int, item_idx: int) -> Explanation:
        """The attention weight of each history item for this target (kind ``"attention"``, not exact):
        where the network looked. The score is a neural network of the attention-pooled history, the
        user and the target; no part of it belongs to one history item, so the weights do not sum to it."""
        if getattr(self, "uses_prior_", False):
            raise NotSupportedError(
                f"{type(self).__name__} cannot explain its scores: it was trained as a Pipeline's ranker, "
                "whose scores need the retriever's"
            )
        u = np.array([user_idx], dtype=np.int64)
        i = np.array([item_idx], dtype=np.int64)
        end, length = self._history(u, None)
        module = self._inference_module()
        with torch_threads(self.num_threads), torch.inference_mode():
            hist, weights = module.history_attention(
                torch.from_numpy(i).to(self._device), torch.from_numpy(end).to(self._device), torch.from_numpy(length).to(self._device)
            )
        score = float(self._logits(u, i)[0])
        w = weights.double().cpu().numpy()
        return Explanation("attention", hist.cpu().numpy().astype(np.int64), w, score, exact=False)

    def _build_module(self, tables: FieldTables, history_items: NDArray[np.int64] | None, prior: bool = False) -> DINNet:
        assert history_items is not None
        return DINNet(
            tables,
            history_items,
            self.embedding_dim,
            tuple(self.hidden_units),
            self.activation,
            float(self.dropout),
            float(self.l2_embedding),
            tuple(self.attention_units),
            self.attention_activation,
            bool(self.attention_softmax),
            bool(self.first_order),
            bool(self.fm),
            prior,
        )


__all__ = ["DIN", "DINNet", "packed_positions"]
