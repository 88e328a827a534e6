"""GRU4Rec: recurrent next-item recommendation (Hidasi et al. 2016) on user sequences."""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import NDArray

from recsys.models.deep._sequential import SequentialRecommender, sequence_net_base


def _net(**kwargs: Any) -> Any:
    import torch
    from torch import nn

    class GRU4RecNet(sequence_net_base()):  # type: ignore[misc]
        def __init__(self, n_layers: int, dropout: float, **base: Any) -> None:
            super().__init__(**base)
            self.drop_in, self.drop_out = nn.Dropout(dropout), nn.Dropout(dropout)
            self.gru = nn.GRU(self.dim, self.dim, num_layers=n_layers, batch_first=True, dropout=dropout if n_layers > 1 else 0.0)

        def encode(self, seq: torch.Tensor) -> torch.Tensor:
            n = seq.shape[1]
            # left-padded rows are rotated to start with their first item, so the recurrence starts from
            # the zero state at the first item whatever the padding; the outputs are rotated back
            shift = n - (seq > 0).sum(1, keepdim=True)
            cols = torch.arange(n, device=seq.device)[None, :]
            start = seq.gather(1, (cols + shift) % n)
            out, _ = self.gru(self.drop_in(self.embed(start)))
            back = ((cols - shift) % n)[..., None].expand(-1, -1, self.dim)
            return self.drop_out(out).gather(1, back)

    return GRU4RecNet(**kwargs)


class GRU4Rec(SequentialRecommender):
    """Recurrent next-item recommendation (GRU4Rec, Hidasi et al. 2016) in PyTorch.

    A multi-layer GRU reads each user's history in time order; its output at
    each position scores every item against the item embeddings (tied with
    the input) for the next item. Trained on whole user sequences (the newest
    ``max_len + 1`` items) with full cross-entropy by default, or sampled
    softmax / gBCE; the shared sequence rules, losses and bad-input behaviour
    are those of :class:`~recsys.models.SASRec` (see
    :mod:`recsys.models.deep._sequential`).

    Known users are recommended from their whole training history; a new
    user's sequence is scored by :meth:`recommend_history` without refitting
    (natural for a recurrent model: the user's state is the sequence read).
    :meth:`export_onnx` writes an ONNX graph scoring the whole catalogue for
    right-aligned padded histories, and ``fit`` under ``torchrun`` trains with
    distributed data parallel, both as :class:`~recsys.models.SASRec`.

    Parameters
    ----------
    max_len : int, default 50
    dim : int, default 64
        Embedding and hidden-state dimension.
    n_layers : int, default 1
        Stacked GRU layers.
    dropout : float in [0, 1), default 0.2
        On the input embeddings, between layers and on the output.
    loss, n_negatives, gbce_t, item_features, history_mean, set_loss, learning_rate, weight_decay, batch_size, epochs, patience,
    validation_users, refit, time_budget, seed, device, num_threads, show_progress
        As :class:`~recsys.models.SASRec`.

    Examples
    --------
    >>> from recsys.datasets import synthetic
    >>> data = synthetic(200, 100, 3000, seed=1, sequential=0.8)
    >>> model = GRU4Rec(max_len=20, dim=16, epochs=2, num_threads=1, show_progress=False).fit(data)
    >>> model.recommend_one(0, k=3)[0].shape
    (3,)
    """

    def __init__(
        self,
        max_len: int = 50,
        dim: int = 64,
        n_layers: int = 1,
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
        super().__init__(
            max_len=max_len, dim=dim, n_layers=n_layers, dropout=dropout, loss=loss, n_negatives=n_negatives,
            gbce_t=gbce_t, item_features=item_features, history_mean=history_mean, set_loss=set_loss, learning_rate=learning_rate, weight_decay=weight_decay,
            batch_size=batch_size, epochs=epochs, patience=patience, validation_users=validation_users, refit=refit,
            time_budget=time_budget, seed=seed, device=device, num_threads=num_threads, show_progress=show_progress,
        )  # fmt: skip

    def _build_module(self, n_items: int, feature_rows: NDArray[np.int64], layout: dict[str, Any]) -> Any:
        return _net(n_layers=self.n_layers, dropout=self.dropout, **self._net_args(n_items, feature_rows, layout))


__all__ = ["GRU4Rec"]
