"""The multi-task part of the multi-task networks: experts, gates, towers, and the per-task loss."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch
from numpy.typing import NDArray
from torch import nn
from torch.nn import functional as F

from recsys.models.deep._layers import fm_term, mlp
from recsys.models.deep.trainer import roc_auc


class GatedExperts(nn.Module):
    """One extraction layer of PLE (Tang et al. 2020; "customized gate control"): shared experts and
    ``n_specific`` experts per task; task ``t``'s output is a softmax-gated mixture of its own
    experts and the shared ones, the shared output (unless ``last``) a mixture of all of them.

    With ``n_specific=0`` and one layer this is MMoE (Ma et al. 2018): every task mixes the same
    shared experts through its own gate.

    Examples
    --------
    >>> layer = GatedExperts(6, n_tasks=2, n_shared=2, n_specific=1, units=(4,), act="relu", dropout=0.0, last=False)
    >>> x = torch.randn(3, 6)
    >>> [tuple(o.shape) for o in layer([x, x, x])]  # two tasks and the shared output
    [(3, 4), (3, 4), (3, 4)]
    """

    def __init__(
        self, n_in: int, n_tasks: int, n_shared: int, n_specific: int, units: tuple[int, ...], act: str, dropout: float, last: bool
    ) -> None:
        super().__init__()
        self.shared = nn.ModuleList(mlp(n_in, units, act, dropout) for _ in range(n_shared))
        self.specific = nn.ModuleList(
            nn.ModuleList(mlp(n_in, units, act, dropout) for _ in range(n_specific)) for _ in range(n_tasks)
        )
        self.gates = nn.ModuleList(nn.Linear(n_in, n_specific + n_shared) for _ in range(n_tasks))
        self.shared_gate = None if last else nn.Linear(n_in, n_tasks * n_specific + n_shared)

    @staticmethod
    def _mix(gate: nn.Module, x: torch.Tensor, experts: list[torch.Tensor]) -> torch.Tensor:
        g = torch.softmax(gate(x), dim=-1)  # (B, E)
        return torch.einsum("be,bed->bd", g, torch.stack(experts, 1))

    def forward(self, xs: list[torch.Tensor]) -> list[torch.Tensor]:
        """``xs``: each task's input, then the shared input; returns each task's output (then the
        shared output unless this is the last layer)."""
        shared = [e(xs[-1]) for e in self.shared]
        own = [[e(xs[t]) for e in experts] for t, experts in enumerate(self.specific)]  # type: ignore[attr-defined]
        out = [self._mix(self.gates[t], xs[t], own[t] + shared) for t in range(len(own))]
        if self.shared_gate is not None:
            out.append(self._mix(self.shared_gate, xs[-1], [e for o in own for e in o] + shared))
        return out


class MultiTaskNet(nn.Module):
    """A shared representation (DeepFM's or DIN's, see ``bottom``), a multi-task structure and one
    tower per task.

    ``bottom`` is a :class:`~recsys.models.deep.deepfm.DeepFMNet` or
    :class:`~recsys.models.deep.din.DINNet` built with ``head=False``: its
    ``represent`` gives each row's DNN input (field embeddings; with DIN also
    the target and the attention interest over the history) and a "wide"
    logit term (bias + first order + FM) that every head adds with its own
    learned scale. The structure maps the representation to one input per
    task: ``"shared_bottom"`` one MLP for all, ``"mmoe"`` softmax-gated shared
    experts, ``"ple"`` ``levels`` extraction layers of shared and per-task
    experts, ``"esmm"`` none (each tower is a full MLP over the shared
    embeddings, as in the paper). Each tower is an MLP and one output unit.

    ``forward`` returns ``(logits (B, T), penalty)``, one column per task in
    ``names`` order: a logit for a binary task, the predicted value for a
    regression task. With ``esmm`` the ``like`` column is the logit of
    pCTCVR = pCTR x pCVR, where pCVR is its tower's output (the conditional
    probability of a like given a click); :meth:`heads` gives the towers'
    own outputs (pCVR's logit in that column).
    """

    def __init__(
        self,
        bottom: nn.Module,
        kinds: tuple[str, ...],
        names: tuple[str, ...],
        structure: str,
        units: tuple[int, ...],
        tower_units: tuple[int, ...],
        act: str,
        dropout: float,
        *,
        n_experts: int = 1,
        n_task_experts: int = 0,
        levels: int = 1,
        esmm: bool = False,
        task_weights: tuple[float, ...] | None = None,
        uncertainty: bool = False,
        monitor: int = 0,
        prior: bool = False,
        rating_mean: float = 0.0,
    ) -> None:
        super().__init__()
        self.bottom = bottom
        self.kinds, self.names, self.structure = kinds, names, structure
        n_tasks = len(kinds)
        rep = int(bottom.rep_dim)  # type: ignore[arg-type]
        self.shared: nn.Module | None = None
        self.mixer = nn.ModuleList()
        if structure == "shared_bottom":
            self.shared = mlp(rep, units, act, dropout)
            width = units[-1]
        elif structure in ("mmoe", "ple"):
            n_in = rep
            for level in range(levels):
                last = level == levels - 1
                self.mixer.append(GatedExperts(n_in, n_tasks, n_experts, n_task_experts, units, act, dropout, last))
                n_in = units[-1]
            width = units[-1]
        else:  # esmm: each tower sees the shared representation itself
            width = rep
            tower_units = tuple(units) + tuple(tower_units)
        self.towers = nn.ModuleList(mlp(width, tower_units, act, dropout) for _ in range(n_tasks))
        self.outs = nn.ModuleList(nn.Linear(tower_units[-1], 1) for _ in range(n_tasks))
        # each head adds the shared wide term (bias + first order + FM) with its own scale
        self.wide_scale = nn.Parameter(torch.ones(n_tasks))
        with torch.no_grad():
            for t, kind in enumerate(kinds):
                if kind == "regression":  # start at the mean rating, not at 0
                    self.outs[t].bias.fill_(rating_mean)  # type: ignore[operator]
        if prior:
            # a Pipeline ranker: the retriever's standardised score enters each binary head with a learned weight
            self.prior_weight = nn.Parameter(torch.tensor([1.0 if k == "binary" else 0.0 for k in kinds]))
        self.esmm = esmm
        self.click = names.index("click") if esmm else -1
        self.like = names.index("like") if esmm else -1
        self.task_weights = tuple(task_weights) if task_weights is not None else (1.0,) * n_tasks
        self.log_vars = nn.Parameter(torch.zeros(n_tasks)) if uncertainty else None
        self.monitor = monitor

    @property
    def emb(self) -> nn.Module:
        """The shared field embedding (the trainer switches its gradients to sparse)."""
        return self.bottom.emb  # type: ignore[return-value]

    def parameter_groups(self, weight_decay: float) -> list[dict[str, Any]]:
        """L2 (``weight_decay``) on the weight matrices of the experts and towers only."""
        dense = [p for n, p in self.named_parameters() if n.startswith(("shared.", "mixer.", "towers.", "outs.")) and p.ndim > 1]
        ids = {id(p) for p in dense}
        rest = [p for p in self.parameters() if id(p) not in ids]
        return [{"params": dense, "weight_decay": weight_decay}, {"params": rest, "weight_decay": 0.0}]

    def _represent(self, inputs: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``(representation (B, rep_dim), wide logit term (B,), embedding penalty)``."""
        b = self.bottom
        if "end" in inputs:  # DIN
            x, state = b.represent(inputs["user"], inputs["item"], inputs["end"], inputs["length"])  # type: ignore[operator]
            wide, penalty = b.finish(x.new_zeros(len(x)), state)  # type: ignore[operator]
            return x, wide, penalty
        e, first, sq = b.represent(inputs["user"], inputs["item"])  # type: ignore[operator]
        return e.flatten(1), first + fm_term(e), b.penalty(e, sq)  # type: ignore[operator]

    def _heads(self, inputs: dict[str, torch.Tensor], prior: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
        x, wide, penalty = self._represent(inputs)
        return self.heads_from(x, wide, prior), penalty

    def heads_from(self, x: torch.Tensor, wide: torch.Tensor, prior: torch.Tensor | None) -> torch.Tensor:
        """The towers' outputs (B, T) from the representation and the wide term (see :meth:`heads`)."""
        n_tasks = len(self.towers)
        if self.shared is not None:
            xs = [self.shared(x)] * n_tasks
        elif len(self.mixer):
            xs = [x] * (n_tasks + 1)
            for layer in self.mixer:
                xs = layer(xs)
        else:
            xs = [x] * n_tasks
        heads = torch.cat([out(tower(h)) for tower, out, h in zip(self.towers, self.outs, xs)], 1)
        heads = heads + wide.unsqueeze(1) * self.wide_scale
        if prior is not None:
            heads = heads + prior.to(heads.dtype).unsqueeze(1) * self.prior_weight
        return heads

    def heads(
        self,
        user: torch.Tensor,
        item: torch.Tensor,
        end: torch.Tensor | None = None,
        length: torch.Tensor | None = None,
        prior: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """The towers' outputs (B, T): as :meth:`forward`'s logits, but ESMM's ``like`` column is pCVR's logit."""
        return self._heads(_inputs(user, item, end, length), prior)[0]

    def forward(
        self,
        user: torch.Tensor,
        item: torch.Tensor,
        end: torch.Tensor | None = None,
        length: torch.Tensor | None = None,
        prior: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        heads, penalty = self._heads(_inputs(user, item, end, length), prior)
        return self.logits_from_heads(heads), penalty

    def logits_from_heads(self, heads: torch.Tensor) -> torch.Tensor:
        """:meth:`forward`'s logits from the towers' outputs (ESMM: the ``like`` column becomes pCTCVR's logit)."""
        if not self.esmm:
            return heads
        ctcvr = esmm_logit(heads[:, self.click], heads[:, self.like])
        cols = [ctcvr if t == self.like else heads[:, t] for t in range(heads.shape[1])]
        return torch.stack(cols, 1)

    # -- the objective the trainer calls -----------------------------------------------------

    def training_loss(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """Weighted sum over tasks of each task's mean loss over the rows it labels (a NaN label:
        none): binary cross-entropy of a binary task, squared error of a regression task. With
        learned uncertainty weighting (Kendall et al. 2018) task ``t``'s loss ``L`` becomes
        ``exp(-s) L + s / 2`` (binary) or ``exp(-s) L / 2 + s / 2`` (regression), ``s`` its learned log-variance."""
        total = logits.new_zeros(())
        for t, kind in enumerate(self.kinds):
            y = labels[:, t]
            mask = ~torch.isnan(y)
            y0 = torch.where(mask, y, torch.zeros_like(y))
            z = logits[:, t]
            if kind == "binary":
                per = F.binary_cross_entropy_with_logits(z, y0, reduction="none")
            else:
                per = (z - y0) ** 2
            loss = (per * mask).sum() / mask.sum().clamp_min(1)
            if self.log_vars is not None:
                s = self.log_vars[t]
                loss = (torch.exp(-s) * loss if kind == "binary" else 0.5 * torch.exp(-s) * loss) + 0.5 * s
            total = total + self.task_weights[t] * loss
        return total

    def validation_metrics(self, labels: NDArray[np.float32], logits: NDArray[np.float32]) -> dict[str, float]:
        """Per task on the rows it labels: AUC (binary) or RMSE (regression); ``val_score`` is the
        monitored task's AUC or minus its RMSE."""
        out: dict[str, float] = {}
        for t, (name, kind) in enumerate(zip(self.names, self.kinds)):
            m = ~np.isnan(labels[:, t])
            if kind == "binary":
                out[f"val_{name}_auc"] = value = roc_auc(labels[m, t], logits[m, t])
            else:
                err = logits[m, t].astype(np.float64) - labels[m, t]
                out[f"val_{name}_rmse"] = rmse = math.sqrt(float(np.mean(err * err))) if m.any() else float("nan")
                value = -rmse
            if t == self.monitor:
                out["val_score"] = value
        return out


def _inputs(user: torch.Tensor, item: torch.Tensor, end: torch.Tensor | None, length: torch.Tensor | None) -> dict[str, torch.Tensor]:
    """The bottom's inputs: DeepFM's (user, item), or DIN's with the history run (end, length)."""
    if end is None or length is None:
        return {"user": user, "item": item}
    return {"user": user, "item": item, "end": end, "length": length}


def esmm_logit(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """The logit of ``sigmoid(a) * sigmoid(b)``, computed in log space.

    Examples
    --------
    >>> a, b = torch.tensor([0.3, -2.0]), torch.tensor([1.5, 4.0])
    >>> torch.allclose(torch.sigmoid(esmm_logit(a, b)), torch.sigmoid(a) * torch.sigmoid(b))
    True
    """
    # p = 1 / ((1 + e^-a)(1 + e^-b)), so p / (1 - p) = 1 / (e^-a + e^-b + e^-(a+b)): finite for all a, b and
    # made of operators every ONNX runtime has (no expm1)
    return -torch.logsumexp(torch.stack([-a, -b, -(a + b)]), 0)


__all__ = ["GatedExperts", "MultiTaskNet", "esmm_logit"]
