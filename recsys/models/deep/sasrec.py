"""SASRec: self-attentive sequential recommendation (Kang & McAuley 2018), trained with full softmax."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from numpy.typing import NDArray

from recsys.models.deep._sequential import SequentialRecommender, check_heads, sequence_net_base


def _net(**kwargs: Any) -> Any:
    import torch
    from torch import nn

    class Block(nn.Module):
        """Pre-norm causal self-attention and feed-forward, each with a residual connection."""

        def __init__(self, dim: int, n_heads: int, dropout: float) -> None:
            super().__init__()
            self.n_heads, self.p = n_heads, dropout
            self.norm1, self.norm2 = nn.LayerNorm(dim), nn.LayerNorm(dim)
            self.qkv, self.out = nn.Linear(dim, 3 * dim), nn.Linear(dim, dim)
            self.ffn = nn.Sequential(nn.Linear(dim, dim), nn.GELU(), nn.Dropout(dropout), nn.Linear(dim, dim))
            self.drop = nn.Dropout(dropout)

        def forward(self, x: torch.Tensor, allowed: torch.Tensor) -> torch.Tensor:
            b, n, d = x.shape
            q, k, v = self.qkv(self.norm1(x)).view(b, n, 3, self.n_heads, d // self.n_heads).permute(2, 0, 3, 1, 4)
            a = torch.nn.functional.scaled_dot_product_attention(
                q, k, v, attn_mask=allowed, dropout_p=self.p if self.training else 0.0
            )
            x = x + self.drop(self.out(a.transpose(1, 2).reshape(b, n, d)))
            return x + self.drop(self.ffn(self.norm2(x)))

    class SASRecNet(sequence_net_base()):  # type: ignore[misc]
        def __init__(self, max_len: int, n_layers: int, n_heads: int, dropout: float, **base: Any) -> None:
            super().__init__(**base)
            self.pos_emb = nn.Embedding(max_len, self.dim)
            nn.init.normal_(self.pos_emb.weight, std=self.dim**-0.5)
            self.drop = nn.Dropout(dropout)
            self.blocks = nn.ModuleList([Block(self.dim, n_heads, dropout) for _ in range(n_layers)])
            self.norm = nn.LayerNorm(self.dim)

        def encode(self, seq: torch.Tensor) -> torch.Tensor:
            n = seq.shape[1]
            real = seq > 0
            # positions of the fixed-width window: the newest item is always at the last one
            pos = torch.arange(self.pos_emb.num_embeddings - n, self.pos_emb.num_embeddings, device=seq.device)
            x = self.embed(seq) * math.sqrt(self.dim) + self.pos_emb(pos)[None]
            x = self.drop(x) * real[..., None]
            # causal, never attending to padding; a padding position attends to itself (no empty softmax row)
            idx = torch.arange(n, device=seq.device)
            causal = idx[None, :] <= idx[:, None]
            itself = idx[None, :] == idx[:, None]  # (not torch.eye: onnxruntime has no boolean EyeLike)
            allowed = (causal[None] & (real[:, None, :] | itself[None]))[:, None]
            for block in self.blocks:
                x = block(x, allowed) * real[..., None]
            return self.norm(x)

    return SASRecNet(**kwargs)


class SASRec(SequentialRecommender):
    """Self-attentive next-item recommendation (SASRec, Kang & McAuley 2018) in PyTorch.

    Each user's history, ordered in time, is read by a causal transformer
    (learned positions, pre-norm blocks of multi-head self-attention and a
    feed-forward layer); the encoding at each position scores every item
    against the item embeddings (shared with the input) for the next item.
    Trained by default with cross-entropy over the whole catalogue (the
    "SASRec+" of Klenitskiy & Vasilev 2023), alternatively with sampled
    softmax or gSASRec's gBCE (see :mod:`recsys.models.deep._sequential` for
    the losses, the sequence rules and the bad-input behaviour).

    Known users are recommended from their whole training history (its newest
    ``max_len`` items). A new user is scored from their sequence with
    :meth:`recommend_history` without refitting, which is natural for this
    model: the user *is* the sequence, there is no per-user parameter.
    :meth:`similar_items` compares the item vectors (cosine). Retrieval goes
    through the shared FAISS index (exact below 50,000 items).

    :meth:`export_onnx` writes the network as an ONNX graph for serving
    without Python: a batch of right-aligned padded histories in, the scores
    of the whole catalogue out (see the README, "Serving deep models without
    Python"). Under ``torchrun`` (``--nproc_per_node N``) ``fit`` trains with
    distributed data parallel through the shared trainer: ``batch_size`` stays
    the global batch, each process' loss is weighted by its share of the
    batch's positions so that the averaged gradient is the one-process one
    (without dropout the run follows the one-process path up to float
    rounding), every process ends with the same parameters; save on the main
    process only (:func:`recsys.models.deep.is_main_process`).

    Parameters
    ----------
    max_len : int, default 50
        Items of a history read (the newest; older ones are dropped).
    dim : int, default 64
        Embedding and hidden dimension.
    n_layers : int, default 2
        Transformer blocks.
    n_heads : int, default 2
        Attention heads (must divide ``dim``).
    dropout : float in [0, 1), default 0.2
    loss : {"softmax", "sampled", "gbce"}, default "softmax"
        Full cross-entropy; sampled softmax over ``n_negatives`` uniform
        items; or gBCE with ``n_negatives`` and calibration ``gbce_t``. A full
        softmax too large for the available memory raises ParameterError
        naming ``loss="sampled"``.
    n_negatives : int, default 256
        Negatives per position of ``"sampled"`` and ``"gbce"``.
    gbce_t : float in [0, 1], default 0.75
        gBCE calibration (0: plain binary cross-entropy, 1: fully calibrated).
    item_features : list of str, optional
        Item feature columns (categorical or lists, such as ``["genres"]``)
        whose embeddings are added to the item embedding.
    history_mean : bool, default True
        Add to the encoding at every position the mean of the embeddings
        of the items read so far, times ``sqrt(dim)``: an order-free summary
        of the whole history (as in FISM) next to the order-aware one. On
        data whose order carries nothing the next-item network alone loses to
        set models such as EASE, and this term closes most of that gap
        without losing on ordered data (benchmarks/results/sequential.md).
        False gives the plain SASRec / GRU4Rec network.
    set_loss : float >= 0, default 0.0
        Weight of a second training loss next to the next-item one: every
        item of a training sequence is predicted from ``sqrt(dim)`` times the
        mean embedding of the *other* items of the sequence (the set with one
        item left out, order ignored: the objective of FISM and, in closed
        form, EASE), with the model's ``loss``. It trains the order-free
        summary of ``history_mean`` on whole histories rather than on
        prefixes only: worth trying (1.0) where the order carries little, as
        on synthetic data without an order signal; on strongly ordered data
        it slows the next-item fit (benchmarks/results/sequential.md tunes it
        on the validation position). 0 trains on the next-item loss alone.
    learning_rate, weight_decay : float
        Adam's step size and L2 penalty.
    batch_size : int, default 128
        Sequences (users) per step.
    epochs : int, default 100
        Maximum epochs.
    patience : int, default 5
        Epochs without a better validation NDCG@10 before stopping.
    validation_users : int, default 10000
        Users (with at least 3 interactions, drawn by ``seed``) whose last
        item is held out for early stopping on NDCG@10 over the full
        catalogue (their earlier items excluded); 0 trains ``epochs`` epochs.
    refit : bool, default False
        After early stopping, train again on every item (the held-out ones
        too) for the chosen number of epochs. False keeps the early-stopped
        network; the held-out items still enter the users' vectors.
    time_budget : float, optional
        Seconds of training after which it stops (at the best state so far).
    seed : int, default 0
    device : str, default "auto"
        ``"auto"`` (CUDA when available), ``"cpu"``, ``"cuda"`` or ``"cuda:N"``.
    num_threads : int, optional
        Torch threads while training and scoring.
    show_progress : bool, optional

    Examples
    --------
    >>> from recsys.datasets import synthetic
    >>> data = synthetic(200, 100, 3000, seed=1, sequential=0.8)
    >>> model = SASRec(max_len=20, dim=16, epochs=2, num_threads=1, show_progress=False).fit(data)
    >>> ids, scores = model.recommend_history([3, 17, 42], k=5)
    >>> len(ids)
    5
    """

    def __init__(
        self,
        max_len: int = 50,
        dim: int = 64,
        n_layers: int = 2,
        n_heads: int = 2,
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
        self.n_heads = n_heads
        super().__init__(
            max_len=max_len, dim=dim, n_layers=n_layers, dropout=dropout, loss=loss, n_negatives=n_negatives,
            gbce_t=gbce_t, item_features=item_features, history_mean=history_mean, set_loss=set_loss, learning_rate=learning_rate, weight_decay=weight_decay,
            batch_size=batch_size, epochs=epochs, patience=patience, validation_users=validation_users, refit=refit,
            time_budget=time_budget, seed=seed, device=device, num_threads=num_threads, show_progress=show_progress,
        )  # fmt: skip

    def _validate_params(self) -> None:
        super()._validate_params()
        check_heads(type(self).__name__, self.dim, self.n_heads)

    def _build_module(self, n_items: int, feature_rows: NDArray[np.int64], layout: dict[str, Any]) -> Any:
        return _net(
            max_len=self.max_len, n_layers=self.n_layers, n_heads=self.n_heads, dropout=self.dropout,
            **self._net_args(n_items, feature_rows, layout),
        )  # fmt: skip


__all__ = ["SASRec"]
