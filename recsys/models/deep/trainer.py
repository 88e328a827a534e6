"""The one trainer of every torch model in recsys: device, data feeding, AMP, early stopping, DDP.

A model hands the trainer

* an ``nn.Module`` whose ``forward(**inputs)`` returns ``(logits, penalty)``
  (``penalty`` a scalar added to the mean binary cross-entropy),
* an :class:`EpochSource` giving each epoch's rows (negatives are re-sampled
  there): either :class:`RowBatches`, which build any set of rows' arrays on
  request, or a dict of equal-length numpy arrays (labels in ``"label"``,
  every other array a keyword input of ``forward``),
* optionally fixed validation rows (either form), for early stopping on validation AUC.

Two generic hooks serve models that are not click-through rankers. Rows
without a ``"label"`` array are self-supervised: the module computes its own
loss and ``forward(**inputs)`` returns ``(loss, penalty)`` (the sequential
models' softmax losses). ``fit(..., score=f)`` replaces the validation AUC by
``f(module)``, any validation score where higher is better (NDCG@10 of a
held-out next item), logged per epoch under ``score_name``. A module with
labelled rows may define its own objective: ``training_loss(logits, labels)``
(a scalar tensor, used in place of the binary cross-entropy; the penalty is still
added) and ``validation_metrics(labels, logits)`` (a dict of floats whose
``"val_score"``, higher is better, replaces the validation AUC for early
stopping). Logits and labels may then have one column per task (B, T).

Per epoch the trainer draws one permutation of the row numbers and, batch
by batch, asks the rows for the arrays of the next ``batch_size`` numbers of
it (vectorised gathers, no per-sample Python): an epoch never holds more
than its index arrays and one batch. On CUDA a batch is pinned and copied
with ``non_blocking=True``, and the forward pass runs under autocast
(bfloat16 where supported, else float16 with a gradient scaler). On CPU
training is in float32, seeded and deterministic for a given seed and thread
count.

The optimiser is Adam; the weights of embeddings built with ``sparse=True``
get :func:`lazy_adam` instead, which updates only the rows a batch used, so a
step costs the same whatever the size of the table.

Distributed data parallel
-------------------------
When the process was started by ``torchrun`` (``WORLD_SIZE > 1`` in the
environment), :meth:`Trainer.fit` joins the process group (``gloo`` on CPU,
``nccl`` on CUDA; one GPU per process, ``cuda:LOCAL_RANK``), wraps the module
in ``DistributedDataParallel`` and gives each process its share of every
batch: ``batch_size`` stays the *global* batch size, so a run on N processes
follows the same optimisation path as one process (up to float reduction
order). Every process draws the same shuffles and negatives from the seed,
validation predictions are gathered so every process computes the same AUC
and takes the same early-stopping decision, and every process ends with the
same parameters. Save the model on one process only (see
:func:`is_main_process`).
"""

from __future__ import annotations

import atexit
import contextlib
import math
import os
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np
from numpy.typing import NDArray

from recsys._utils.progress import progress_bar
from recsys._utils.threads import torch_threads
from recsys.errors import ParameterError, RecsysWarning

if TYPE_CHECKING:
    import torch
    from torch import nn


class RowBatches(Protocol):
    """Rows that build the arrays of any subset of themselves on request."""

    def __len__(self) -> int: ...

    def gather(self, index: NDArray[Any]) -> dict[str, NDArray[Any]]:
        """Equal-length arrays of rows ``index`` (in that order), labels under ``"label"``."""
        ...


class EpochSource(Protocol):
    """What the trainer pulls training rows from."""

    def epoch(self, epoch: int) -> RowBatches | dict[str, NDArray[Any]]:
        """The rows of epoch ``epoch`` (0-based)."""
        ...


class ArrayRows:
    """:class:`RowBatches` over a dict of equal-length arrays (labels under ``"label"``).

    Examples
    --------
    >>> rows = ArrayRows({"x": np.array([10, 20, 30]), "label": np.array([1.0, 0.0, 1.0])})
    >>> len(rows), rows.gather(np.array([2, 0]))["x"].tolist()
    (3, [30, 10])
    """

    def __init__(self, arrays: dict[str, NDArray[Any]]) -> None:
        self.arrays = arrays

    def __len__(self) -> int:
        return len(next(iter(self.arrays.values())))

    def gather(self, index: NDArray[Any]) -> dict[str, NDArray[Any]]:
        return {k: v[index] for k, v in self.arrays.items()}


def as_row_batches(rows: RowBatches | dict[str, NDArray[Any]]) -> RowBatches:
    """``rows`` as :class:`RowBatches` (a dict of arrays is wrapped in :class:`ArrayRows`)."""
    return ArrayRows(rows) if isinstance(rows, dict) else rows


# -- devices and processes -------------------------------------------------------------


def resolve_device(device: Any, owner: str = "the model", *, strict: bool = True) -> torch.device:
    """``"auto"`` -> ``cuda`` when available, else ``cpu``; or the given torch device string.

    With ``strict=False`` (loading a saved model) a CUDA device that is not
    available falls back to the CPU with a warning instead of an error.

    Examples
    --------
    >>> resolve_device("cpu")
    device(type='cpu')
    """
    import torch

    if device is None or device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError):
        raise ParameterError(
            f"The 'device' parameter of {owner} must be 'auto', 'cpu', 'cuda' or 'cuda:N'. Got {device!r} instead."
        ) from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        if strict:
            raise ParameterError(f"{owner} was asked for device={device!r} but CUDA is not available here")
        warnings.warn(f"{owner}: CUDA is not available; using the CPU instead of {device!r}", RecsysWarning, stacklevel=3)
        return torch.device("cpu")
    if dev.type not in ("cpu", "cuda"):
        raise ParameterError(f"The 'device' parameter of {owner} must be a cpu or cuda device. Got {device!r} instead.")
    return dev


def launched_distributed() -> bool:
    """True in a process started by ``torchrun`` with more than one process."""
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


def is_main_process() -> bool:
    """True unless this is a non-zero rank of a distributed run (save and log on the main process only).

    Examples
    --------
    >>> is_main_process()
    True
    """
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        return dist.get_rank() == 0
    return int(os.environ.get("RANK", "0")) == 0


def _join_process_group(backend: str) -> None:
    """Join the torchrun process group once per process (unless the caller already did).

    The group stays up for later fits in the same process (re-creating one
    from torchrun's rendezvous store after destroying it hangs) and is
    destroyed at exit.
    """
    import torch.distributed as dist

    if dist.is_initialized():
        return
    dist.init_process_group(backend=backend)
    atexit.register(_leave_process_group)


def _leave_process_group() -> None:
    import torch.distributed as dist

    if dist.is_initialized():
        dist.destroy_process_group()


# -- metrics ---------------------------------------------------------------------------------


def roc_auc(labels: NDArray[Any], scores: NDArray[Any]) -> float:
    """Area under the ROC curve (Mann-Whitney U with average ranks for ties); NaN with one class.

    Examples
    --------
    >>> roc_auc(np.array([0, 0, 1, 1]), np.array([0.1, 0.4, 0.35, 0.8]))
    0.75
    """
    from scipy.stats import rankdata

    y = np.asarray(labels) > 0.5
    n1 = int(y.sum())
    n0 = len(y) - n1
    if n1 == 0 or n0 == 0:
        return float("nan")
    ranks = rankdata(np.asarray(scores, dtype=np.float64))
    return float((ranks[y].sum() - n1 * (n1 + 1) / 2.0) / (n1 * n0))


def log_loss(labels: NDArray[Any], logits: NDArray[Any]) -> float:
    """Mean binary cross-entropy of logits (computed stably).

    Examples
    --------
    >>> round(log_loss(np.array([1.0, 0.0]), np.array([0.0, 0.0])), 4)
    0.6931
    """
    y = np.asarray(labels, dtype=np.float64)
    z = np.asarray(logits, dtype=np.float64)
    return float(np.mean(np.maximum(z, 0) - z * y + np.log1p(np.exp(-np.abs(z)))))


# -- configuration and results ----------------------------------------------------------------


@dataclass
class TrainConfig:
    """Settings of one training run (the models fill it from their hyper-parameters)."""

    max_epochs: int = 10
    batch_size: int = 256
    learning_rate: float = 1e-3
    weight_decay: float = 0.0
    patience: int = 2
    time_budget: float | None = None
    seed: int = 0
    device: str = "auto"
    num_threads: int | None = None
    mixed_precision: bool = True
    show_progress: bool | None = None
    eval_batch_size: int = 8192
    desc: str = "train"


@dataclass
class TrainResult:
    """What happened: one dict per epoch (``loss``, ``seconds`` of the epoch's training loop, of which
    ``prepare_seconds`` building its rows and permutation, ``samples``, validation metrics), the best
    epoch and why training stopped."""

    epochs: list[dict[str, float]] = field(default_factory=list)
    best_epoch: int = -1
    best_auc: float = float("nan")
    stopped: str = "max_epochs"
    train_seconds: float = 0.0
    train_samples: int = 0
    world_size: int = 1

    @property
    def samples_per_second(self) -> float:
        """Training rows per second of the training loop (all processes together; validation excluded)."""
        return self.train_samples / self.train_seconds if self.train_seconds > 0 else float("nan")

    def to_dict(self) -> dict[str, Any]:
        return {
            "epochs": self.epochs,
            "best_epoch": self.best_epoch,
            "best_auc": self.best_auc,
            "stopped": self.stopped,
            "train_seconds": self.train_seconds,
            "train_samples": self.train_samples,
            "world_size": self.world_size,
        }


# -- the trainer ---------------------------------------------------------------------------------


class Trainer:
    """Train any recsys torch module on an :class:`EpochSource` (see the module docstring).

    Examples
    --------
    >>> import numpy as np, torch
    >>> class LogReg(torch.nn.Module):
    ...     def __init__(self):
    ...         super().__init__()
    ...         self.lin = torch.nn.Linear(2, 1)
    ...     def forward(self, x):
    ...         return self.lin(x).squeeze(-1), torch.zeros(())
    >>> rng = np.random.default_rng(0)
    >>> x = rng.normal(size=(512, 2)).astype(np.float32)
    >>> y = (x[:, 0] > 0).astype(np.float32)
    >>> class Rows:
    ...     def epoch(self, e):
    ...         return {"x": x, "label": y}
    >>> t = Trainer(TrainConfig(max_epochs=30, batch_size=64, learning_rate=0.05, device="cpu", show_progress=False))
    >>> module, result = t.fit(LogReg(), Rows(), {"x": x, "label": y})
    >>> result.best_auc > 0.99
    True
    """

    def __init__(self, config: TrainConfig) -> None:
        self.config = config

    # -- helpers -------------------------------------------------------------------

    def _autocast(self, device: torch.device) -> contextlib.AbstractContextManager[Any]:
        import torch

        if device.type == "cuda" and self.config.mixed_precision:
            dtype = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
            return torch.autocast(device_type="cuda", dtype=dtype)
        return contextlib.nullcontext()

    @staticmethod
    def _optimizers(module: nn.Module, lr: float, weight_decay: float, device: torch.device) -> list[torch.optim.Optimizer]:
        """Adam over the parameters; the weights of embeddings with sparse gradients (``sparse=True``)
        get :func:`lazy_adam` instead (no weight decay)."""
        import torch
        from torch import nn

        groups_fn = getattr(module, "parameter_groups", None)
        if callable(groups_fn):
            groups = groups_fn(weight_decay)
        else:
            groups = [{"params": [p for p in module.parameters() if p.requires_grad], "weight_decay": weight_decay}]
        sparse = [m.weight for m in module.modules() if isinstance(m, nn.Embedding) and m.sparse and m.weight.requires_grad]
        ids = {id(p) for p in sparse}
        groups = [{**g, "params": [p for p in g["params"] if id(p) not in ids]} for g in groups]
        groups = [g for g in groups if g["params"]]
        out: list[torch.optim.Optimizer] = []
        if groups:
            try:
                out.append(torch.optim.Adam(groups, lr=lr, fused=True))
            except (RuntimeError, TypeError, ValueError):  # fused unsupported for this device / build
                out.append(torch.optim.Adam(groups, lr=lr, foreach=device.type == "cuda"))
        if sparse:
            out.append(lazy_adam(sparse, lr=lr))
        return out

    def predict(
        self,
        module: nn.Module,
        inputs: RowBatches | dict[str, NDArray[Any]],
        device: torch.device,
        *,
        rank: int = 0,
        world: int = 1,
    ) -> NDArray[np.float32]:
        """Logits of every row of ``inputs`` (eval mode, no grad), in chunks; under DDP the rows are
        shared out and the predictions gathered, so every process returns all of them."""
        import torch

        source = as_row_batches(inputs)
        n = len(source)
        rows = np.arange(rank, n, world) if world > 1 else np.arange(n)
        out: NDArray[np.float32] | None = None
        was_training = module.training
        module.eval()
        step = self.config.eval_batch_size
        with torch.inference_mode(), self._autocast(device):
            for s in range(0, len(rows), step):
                sel = rows[s : s + step]
                arrays = source.gather(sel)
                batch = {
                    k: torch.from_numpy(np.ascontiguousarray(v)).to(device, non_blocking=True)
                    for k, v in arrays.items() if k != "label"
                }
                logits, _ = module(**batch)
                if out is None:  # one logit per row, or one per task
                    out = np.empty((len(rows),) + tuple(logits.shape[1:]), dtype=np.float32)
                out[s : s + len(sel)] = logits.float().cpu().numpy()
        module.train(was_training)
        if out is None:
            out = np.empty(0, dtype=np.float32)
        if world == 1:
            return out
        import torch.distributed as dist

        size = math.ceil(n / world)
        local = torch.full((size,) + out.shape[1:], float("nan"), dtype=torch.float32)
        local[: len(out)] = torch.from_numpy(out)
        if device.type == "cuda":
            local = local.to(device)
        parts = [torch.empty_like(local) for _ in range(world)]
        dist.all_gather(parts, local)
        full = np.empty((n,) + out.shape[1:], dtype=np.float32)
        for r, p in enumerate(parts):
            cnt = len(range(r, n, world))
            full[r::world] = p[:cnt].cpu().numpy()
        return full

    # -- training -------------------------------------------------------------------

    def fit(
        self,
        module: nn.Module,
        source: EpochSource,
        valid: RowBatches | dict[str, NDArray[Any]] | None = None,
        *,
        score: Callable[[nn.Module], float] | None = None,
        score_name: str = "val_score",
    ) -> tuple[nn.Module, TrainResult]:
        """Train ``module`` and return it (unwrapped, on the training device, best validation state) and the log.

        ``score``, when given, is the validation score of early stopping
        instead of the AUC of ``valid`` (higher is better; called with the
        unwrapped module after every epoch, on every process; logged as
        ``score_name``, its best value in ``best_auc``).
        """
        import torch
        import torch.distributed as dist

        cfg = self.config
        device = resolve_device(cfg.device, cfg.desc)
        rank, world = 0, 1
        if launched_distributed():
            if device.type == "cuda":
                device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
                torch.cuda.set_device(device)
            _join_process_group("nccl" if device.type == "cuda" else "gloo")
            rank, world = dist.get_rank(), dist.get_world_size()
        # seeding inside must not change the caller's random state
        rng_devices = [device.index or 0] if device.type == "cuda" else []
        with torch_threads(cfg.num_threads), torch.random.fork_rng(devices=rng_devices):
            return self._fit(module, source, valid, device, rank, world, score, score_name)

    def _fit(
        self,
        module: nn.Module,
        source: EpochSource,
        valid_rows: RowBatches | dict[str, NDArray[Any]] | None,
        device: torch.device,
        rank: int,
        world: int,
        score: Callable[[nn.Module], float] | None = None,
        score_name: str = "val_score",
    ) -> tuple[nn.Module, TrainResult]:
        import torch
        import torch.distributed as dist
        from torch.nn.parallel import DistributedDataParallel

        cfg = self.config
        cuda = device.type == "cuda"
        # dropout draws differ between processes; everything drawn with numpy is the same on all of them
        torch.manual_seed(cfg.seed * 1_000_003 + rank)
        module = module.to(device)
        net: nn.Module = module
        if world > 1:
            net = DistributedDataParallel(module, device_ids=[device.index] if cuda else None)
        opts = self._optimizers(module, cfg.learning_rate, cfg.weight_decay, device)
        scaler = None
        if cuda and cfg.mixed_precision and not torch.cuda.is_bf16_supported():
            scaler = torch.amp.GradScaler("cuda")
        result = TrainResult(world_size=world)
        best_state: dict[str, torch.Tensor] | None = None
        bad_epochs = 0
        start = time.perf_counter()
        local_batch = max(1, cfg.batch_size // world)
        bar = progress_bar(desc=cfg.desc, total=cfg.max_epochs, show=cfg.show_progress if rank == 0 else False)
        stop_reason = "max_epochs"
        valid = None if valid_rows is None else as_row_batches(valid_rows)
        valid_labels = None if valid is None else _labels(valid, cfg.eval_batch_size)
        loss_fn = getattr(module, "training_loss", None)  # the module's own objective (multi-task)
        metrics_fn = getattr(module, "validation_metrics", None)
        try:
            for epoch in range(cfg.max_epochs):
                t0 = time.perf_counter()
                rows = as_row_batches(source.epoch(epoch))
                n = len(rows)
                # the shuffle of permutation(n), on int32 numbers when they fit (same draws, half the memory)
                perm = np.arange(n, dtype=np.int32 if n < 2**31 else np.int64)
                np.random.default_rng([cfg.seed, epoch, 7]).shuffle(perm)
                if world > 1:
                    per = n // world
                    perm = perm[rank::world][:per]
                m = len(perm)
                prepare_time = time.perf_counter() - t0
                n_steps = math.ceil(m / local_batch)
                loss_sum = torch.zeros((), dtype=torch.float64, device=device)
                net.train()
                timed_out = False
                for step in range(n_steps):
                    arrays = rows.gather(perm[step * local_batch : (step + 1) * local_batch])
                    tensors = {k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in arrays.items()}
                    if cuda:
                        tensors = {k: v.pin_memory() for k, v in tensors.items()}
                    y = tensors.pop("label").float().to(device, non_blocking=cuda) if "label" in tensors else None
                    batch = {k: v.to(device, non_blocking=cuda) for k, v in tensors.items()}
                    n_rows = len(next(iter(arrays.values())))
                    with self._autocast(device):
                        logits, penalty = net(**batch)
                        if y is None:  # self-supervised rows: the module returned its loss
                            loss = logits.float() + penalty
                        elif loss_fn is not None:  # the module's own objective (multi-task)
                            loss = loss_fn(logits.float(), y) + penalty
                        else:
                            loss = torch.nn.functional.binary_cross_entropy_with_logits(logits.float(), y) + penalty
                    for opt in opts:
                        opt.zero_grad(set_to_none=True)
                    if scaler is not None:
                        scaler.scale(loss).backward()
                        for opt in opts:
                            scaler.step(opt)
                        scaler.update()
                    else:
                        loss.backward()
                        for opt in opts:
                            opt.step()
                    loss_sum += loss.detach() * n_rows
                    if cfg.time_budget is not None and step % 16 == 15:
                        timed_out = self._agree(time.perf_counter() - start > cfg.time_budget, world, device)
                        if timed_out:
                            m = min(m, (step + 1) * local_batch)
                            break
                train_time = time.perf_counter() - t0
                result.train_seconds += train_time
                result.train_samples += m * world
                if world > 1:
                    # batch-norm running statistics are updated per process: take the main process' ones
                    for buf in module.buffers():
                        if buf.is_floating_point():
                            dist.broadcast(buf, src=0)
                stats: dict[str, float] = {
                    "epoch": float(epoch + 1),
                    "loss": float(loss_sum.item() / max(1, m)),
                    "seconds": train_time,
                    "prepare_seconds": prepare_time,
                    "samples": float(m * world),
                }
                if valid is not None or score is not None:
                    if score is not None:
                        auc = stats[score_name] = float(score(module))
                    else:
                        assert valid is not None and valid_labels is not None
                        logits_v = self.predict(module, valid, device, rank=rank, world=world)
                        if metrics_fn is None:
                            stats["val_auc"] = roc_auc(valid_labels, logits_v)
                            stats["val_logloss"] = log_loss(valid_labels, logits_v)
                            auc = stats["val_auc"]
                        else:
                            stats.update(metrics_fn(valid_labels, logits_v))
                            auc = stats["val_score"]
                    if best_state is None or (not math.isnan(auc) and (math.isnan(result.best_auc) or auc > result.best_auc + 1e-6)):
                        result.best_auc, result.best_epoch = auc, epoch + 1
                        best_state = {k: v.detach().clone() for k, v in module.state_dict().items()}
                        bad_epochs = 0
                    else:
                        bad_epochs += 1
                else:
                    result.best_epoch = epoch + 1
                result.epochs.append(stats)
                bar.update(1)
                bar.set_postfix({k: round(v, 4) for k, v in stats.items() if k in ("loss", "val_auc", "val_score", score_name)})
                if timed_out:
                    stop_reason = "time_budget"
                    break
                if (valid is not None or score is not None) and bad_epochs >= cfg.patience:
                    stop_reason = "early_stopping"
                    break
                if cfg.time_budget is not None and self._agree(time.perf_counter() - start > cfg.time_budget, world, device):
                    stop_reason = "time_budget"
                    break
        finally:
            bar.close()
        result.stopped = stop_reason
        if best_state is not None:
            module.load_state_dict(best_state)
        module.eval()
        return module, result

    @staticmethod
    def _agree(flag: bool, world: int, device: torch.device) -> bool:
        """The flag of any process, so all processes stop together."""
        if world == 1:
            return flag
        import torch
        import torch.distributed as dist

        t = torch.tensor([1.0 if flag else 0.0], device=device)
        dist.all_reduce(t, op=dist.ReduceOp.MAX)
        return bool(t.item() > 0)


def lazy_adam(params: list[torch.Tensor], lr: float, betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8) -> torch.optim.Optimizer:
    """Adam that updates only the rows a sparse gradient names (TensorFlow's LazyAdam; the semantics of
    ``torch.optim.SparseAdam``, in a few vectorised ops per step).

    Each step, the rows of a parameter that the batch used get the Adam update
    (bias correction by the optimiser's step count); the other rows and their
    moments stay as they are, so a step costs O(rows used), not O(table).
    Dense Adam would also decay every row's moments and move every row that
    ever had a gradient. Dense gradients get the plain Adam update.

    Examples
    --------
    >>> import torch
    >>> emb = torch.nn.Embedding(5, 2, sparse=True)
    >>> before = emb.weight.detach().clone()
    >>> opt = lazy_adam([emb.weight], lr=0.1)
    >>> emb(torch.tensor([1, 1, 3])).sum().backward()
    >>> opt.step()
    >>> moved = (emb.weight != before).any(1)
    >>> moved.tolist()
    [False, True, False, True, False]
    >>> torch.allclose(emb.weight[1], before[1] - 0.1, atol=1e-6)  # Adam's first step is lr * sign(grad)
    True
    """
    import torch

    class LazyAdam(torch.optim.Optimizer):
        @torch.no_grad()
        def step(self, closure: Any = None) -> None:  # type: ignore[override]
            for group in self.param_groups:
                b1, b2 = group["betas"]
                for p in group["params"]:
                    if p.grad is None:
                        continue
                    st = self.state[p]
                    if not st:
                        st["step"], st["m"], st["v"] = 0, torch.zeros_like(p), torch.zeros_like(p)
                    st["step"] += 1
                    lr = group["lr"] / (1 - b1 ** st["step"])
                    bc2 = 1 - b2 ** st["step"]
                    if not p.grad.is_sparse:
                        m = st["m"].mul_(b1).add_(p.grad, alpha=1 - b1)
                        v = st["v"].mul_(b2).addcmul_(p.grad, p.grad, value=1 - b2)
                        p.addcdiv_(m, (v / bc2).sqrt_().add_(group["eps"]), value=-lr)
                        continue
                    idx, vals = p.grad._indices()[0], p.grad._values()
                    rows, inv = torch.unique(idx, return_inverse=True)
                    g = vals.new_zeros((len(rows),) + tuple(vals.shape[1:])).index_add_(0, inv, vals)
                    m = st["m"].index_select(0, rows).mul_(b1).add_(g, alpha=1 - b1)
                    v = st["v"].index_select(0, rows).mul_(b2).addcmul_(g, g, value=1 - b2)
                    st["m"].index_copy_(0, rows, m)
                    st["v"].index_copy_(0, rows, v)
                    new = p.index_select(0, rows).addcdiv_(m, (v / bc2).sqrt_().add_(group["eps"]), value=-lr)
                    p.index_copy_(0, rows, new)

    return LazyAdam(params, {"lr": lr, "betas": betas, "eps": eps})


def _labels(rows: RowBatches, chunk: int) -> NDArray[np.float32]:
    """Every label of ``rows`` (one per row, or one row per row with one column per task),
    gathered ``chunk`` rows at a time."""
    n = len(rows)
    out: NDArray[np.float32] | None = None
    for s in range(0, n, chunk):
        part = rows.gather(np.arange(s, min(n, s + chunk)))["label"]
        if out is None:
            out = np.empty((n,) + part.shape[1:], dtype=np.float32)
        out[s : s + chunk] = part
    return np.empty(0, dtype=np.float32) if out is None else out


__all__ = [
    "ArrayRows",
    "EpochSource",
    "RowBatches",
    "as_row_batches",
    "TrainConfig",
    "TrainResult",
    "Trainer",
    "is_main_process",
    "launched_distributed",
    "lazy_adam",
    "log_loss",
    "resolve_device",
    "roc_auc",
    "torch_threads",
]
