"""DeepFM (Guo et al. 2017): first-order terms + factorisation machine + DNN over shared field embeddings."""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
import torch
from numpy.typing import NDArray
from torch import nn

from recsys._state_spec import Spec
from recsys.models.deep._base import DeepRecommender
from recsys.models.deep._layers import FieldEmbedding, dnn_decay_groups, fm_term, mlp
from recsys.models.deep.features import FieldTables


class DeepFMNet(nn.Module):
    """``logit = b + Σ first-order weights + FM(field embeddings) + DNN(concatenated embeddings)``.

    Fields: every categorical field, every multi-valued field (mean of its
    values' embeddings) and every numeric field (its value times a learned
    vector), all of dimension ``dim``.
    """

    def __init__(
        self,
        tables: FieldTables,
        dim: int,
        hidden: tuple[int, ...],
        act: str,
        dropout: float,
        l2_embedding: float,
        prior: bool = False,
        head: bool = True,
    ) -> None:
        super().__init__()
        if prior:
            # a Pipeline ranker: the retriever's standardised score enters the logit with a learned weight
            self.prior_weight = nn.Parameter(torch.ones(()))
        self.emb = FieldEmbedding(tables, dim, first_order=True)
        n_fields = self.emb.n_user_fields + self.emb.n_item_fields + self.emb.n_num
        self.rep_dim = n_fields * dim  # the DNN's input width
        if head:  # without: the bottom of a multi-task network, which has its own towers
            self.dnn = mlp(n_fields * dim, hidden, act, dropout)
            self.out = nn.Linear(hidden[-1], 1)
        self.bias = nn.Parameter(torch.zeros(()))
        self.l2_embedding = l2_embedding

    def parameter_groups(self, weight_decay: float) -> list[dict[str, Any]]:
        """L2 (``weight_decay``) on the DNN weights only; embeddings have their own per-batch penalty."""
        return dnn_decay_groups(self, weight_decay)

    def represent(
        self, user: torch.Tensor, item: torch.Tensor, prior: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor, tuple[torch.Tensor, torch.Tensor]]:
        """``(field embeddings (B, F, d), first-order logit (B,), squared norms)``: the input of the FM
        and DNN terms, the bias + first-order (+ prior) part of the logit, and what :meth:`penalty` takes."""
        fu, first_u, sq_u = self.emb.side("user", user)
        fi, first_i, sq_i = self.emb.side("item", item)
        parts = [fu, fi]
        first = first_u + first_i + self.bias
        if prior is not None:
            first = first + self.prior_weight * prior.to(first.dtype)
        if self.emb.n_num:
            x = self.emb.numeric(user, item).to(fu.dtype)
            parts.append(x.unsqueeze(-1) * self.emb.num_vectors)
            first = first + x @ self.emb.num_weight
        return torch.cat(parts, 1), first, (sq_u, sq_i)

    def penalty(self, e: torch.Tensor, sq: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
        """L2 on the embeddings of each row's user and item (zero in eval mode)."""
        return self.l2_embedding * (sq[0] + sq[1]).mean() if self.training else e.new_zeros(())

    def forward(
        self, user: torch.Tensor, item: torch.Tensor, prior: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        e, first, sq = self.represent(user, item, prior)  # (B, F, d)
        fm = fm_term(e)
        deep = self.out(self.dnn(e.flatten(1))).squeeze(-1)
        return first + fm + deep, self.penalty(e, sq)

class DeepFM(DeepRecommender):
    """DeepFM CTR model (Guo et al. 2017) as a recommender, trained by the shared torch trainer.

    Fields come from the :class:`~recsys.Interactions`: user id, item id and the
    user / item features (see :mod:`recsys.models.deep.features` for the field
    specifications: categorical, multi-valued such as genre lists, bucketed,
    prefixes, numeric). The model is ``bias + first-order weights + FM
    pairwise interactions + DNN``, all over one shared embedding table.

    Parameters
    ----------
    label_threshold : float, optional
        Explicit CTR labels: a row with ``rating >= label_threshold`` is a
        positive, any other row a negative. None (default): every row is a
        positive and negatives are sampled.
    negative_sampling : {"uniform", "popularity"}, default "uniform"
        How negatives are drawn (implicit mode): uniformly over items with an
        interaction, or proportionally to ``count ** 0.75``; never an item the
        user interacted with; re-sampled every epoch.
    negative_ratio : int >= 1, default 4
        Negatives per positive (implicit mode).
    features : list of str, optional
        Field specifications besides the user and item ids, e.g.
        ``["user.gender", "user.age:bucket=18,25,35,45,50,56", "user.zip:prefix=1",
        "item.genres:first", "item.genres"]``; default every non-text feature column.
    embedding_dim : int, default 8
    hidden_units : list of int, default (256, 128)
        DNN layer sizes.
    activation : {"relu", "prelu", "dice"}, default "relu"
        DNN activation.
    dropout : float in [0, 1), default 0.0
        DNN dropout.
    l2_embedding : float >= 0, default 1e-5
        L2 penalty on the embeddings used by each batch (mean over its rows).
    l2_dnn : float >= 0, default 0.0
        L2 penalty (Adam weight decay) on the DNN weights.
    learning_rate : float, default 1e-3
        Adam step size.
    batch_size : int, default 256
        Global batch size (shared out between processes under torchrun).
    epochs : int, default 10
        Maximum number of epochs.
    patience : int, default 2
        Stop after this many epochs without a better validation AUC, keeping the best epoch.
    validation_fraction : float in [0, 1), default 0.1
        Share of each user's rows held out for early stopping: the latest ones
        when there are timestamps, a random draw otherwise. 0 trains on
        everything for ``epochs`` epochs.
    refit : bool, default True
        After early stopping, train again from scratch on all the rows
        (validation rows included) for the best number of epochs. On temporal
        data the validation rows are each user's most recent ones, usually the
        most informative: on ML-100K this lifts the test AUC by about 0.008.
    time_budget : float, optional
        Seconds after which training stops (the best state so far is kept).
    seed : int, default 0
        Seeds initialisation, dropout, shuffles, negatives and the validation draw.
    device : str, default "auto"
        ``"auto"`` (CUDA when available, else CPU), ``"cpu"``, ``"cuda"`` or ``"cuda:N"``.
        A saved model loads on the CPU when its CUDA device is missing.
    num_threads : int, optional
        Torch threads for fit and inference (None: torch's setting). On CPU a
        fit is deterministic for a seed and thread count.
    show_progress : bool, optional
        Progress bar with the loss and validation AUC (default: when stderr is a terminal).
    lazy_embeddings : bool, optional
        Update only the embedding rows each batch uses (Adam on those rows and
        their moments, as TensorFlow's LazyAdam; see
        :func:`~recsys.models.deep.trainer.lazy_adam`), so a batch costs the
        same whatever the number of users and items. False: dense Adam, which
        also decays the moments of, and moves, every row at every batch (a
        pass over the whole table). None (default): lazy when the embedding
        table has more than 20,000 rows (ML-100K's 2,700 train densely; ML-20M
        size's 165,000 lazily); always dense under ``torchrun``.

    Attributes
    ----------
    module_ : torch.nn.Module
        The trained network.
    train_log_ : dict
        Per-epoch loss, validation AUC / log-loss, seconds and samples; best
        epoch; stop reason; training samples and seconds.

    Notes
    -----
    ``recommend`` ranks every item by the predicted logit (fine for small
    catalogues); for large ones use it as the ranker of a
    :class:`~recsys.models.Pipeline`. On CPU, inference runs in float64 so a
    pair's score does not depend on the batch it is scored in.

    Examples
    --------
    >>> from recsys.testing import tiny_interactions
    >>> model = DeepFM(label_threshold=4, epochs=3, hidden_units=[16], num_threads=1,
    ...                show_progress=False).fit(tiny_interactions())
    >>> p = model.predict_proba([0, 0], [0, 1])
    >>> p.shape, bool(((p > 0) & (p < 1)).all())
    ((2,), True)
    """

    _no_explanation: ClassVar[str] = (
        "its score is a neural network of user, item and feature embeddings; no part of it belongs to one history item"
    )
    _state_spec: ClassVar[dict[str, Spec]] = {}  # nothing beyond its base's state

    def _build_module(self, tables: FieldTables, history_items: NDArray[np.int64] | None, prior: bool = False) -> DeepFMNet:
        return DeepFMNet(
            tables,
            self.embedding_dim,
            tuple(self.hidden_units),
            self.activation,
            float(self.dropout),
            float(self.l2_embedding),
            prior,
        )


__all__ = ["DeepFM", "DeepFMNet"]
