"""The shared trainer on a plain module: metrics, early stopping, time budget, batching, determinism."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import torch

from recsys.models.deep.trainer import TrainConfig, Trainer, log_loss, roc_auc


class LogReg(torch.nn.Module):
    def __init__(self, n: int = 3) -> None:
        super().__init__()
        self.lin = torch.nn.Linear(n, 1)
        self.calls: list[int] = []

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if self.training:
            self.calls.append(len(x))
        return self.lin(x).squeeze(-1), torch.zeros(())


class Rows:
    def __init__(self, x: np.ndarray, y: np.ndarray) -> None:
        self.x, self.y, self.epochs = x, y, 0

    def epoch(self, e: int) -> dict[str, np.ndarray]:
        self.epochs += 1
        return {"x": self.x, "label": self.y}


def _xy(n: int = 600, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 3)).astype(np.float32)
    y = (x @ np.array([1.0, -2.0, 0.5]) + 0.3 * rng.normal(size=n) > 0).astype(np.float32)
    return x, y


def _cfg(**kw: Any) -> TrainConfig:
    base: dict[str, Any] = dict(max_epochs=5, batch_size=64, learning_rate=0.05, device="cpu", show_progress=False, num_threads=1)
    return TrainConfig(**{**base, **kw})


def test_roc_auc_against_sklearn_with_ties() -> None:
    from sklearn import metrics  # the independent reference (the 'test' extra)
    rng = np.random.default_rng(1)
    y = rng.integers(0, 2, 500)
    s = np.round(rng.normal(size=500) + y, 1)  # many ties
    assert roc_auc(y, s) == pytest.approx(metrics.roc_auc_score(y, s), abs=1e-12)
    assert np.isnan(roc_auc(np.ones(3), np.arange(3)))


def test_log_loss_by_hand() -> None:
    z = np.array([2.0, -1.0, 0.0, 40.0])
    y = np.array([1.0, 0.0, 1.0, 0.0])
    p = 1 / (1 + np.exp(-z[:3]))
    want = (-np.log(p[0]) - np.log(1 - p[1]) - np.log(p[2]) + 40.0) / 4  # the last term computed stably
    assert log_loss(y, z) == pytest.approx(want, rel=1e-12)


def test_batches_cover_each_epoch_once_in_batch_size_slices() -> None:
    x, y = _xy(250)
    module = LogReg()
    _, result = Trainer(_cfg(max_epochs=2, batch_size=64)).fit(module, Rows(x, y))
    assert module.calls == [64, 64, 64, 58] * 2
    assert [e["samples"] for e in result.epochs] == [250, 250]
    assert result.samples_per_second > 0


def test_training_learns_and_is_deterministic() -> None:
    x, y = _xy()
    torch.manual_seed(0)
    ma = LogReg()
    torch.manual_seed(0)
    mb = LogReg()
    a, ra = Trainer(_cfg(seed=1)).fit(ma, Rows(x, y), {"x": x, "label": y})
    torch.manual_seed(123)  # the global RNG state at fit time must not matter
    b, rb = Trainer(_cfg(seed=1)).fit(mb, Rows(x, y), {"x": x, "label": y})
    assert ra.best_auc > 0.95
    for (k, va), vb in zip(a.state_dict().items(), b.state_dict().values()):
        torch.testing.assert_close(va, vb, rtol=0, atol=0, msg=k)


def test_early_stopping_restores_the_best_epoch() -> None:
    x, y = _xy()
    # validation labels are the opposite of training labels: validation AUC falls as training goes on
    valid = {"x": x, "label": 1 - y}
    trainer = Trainer(_cfg(max_epochs=20, patience=3, learning_rate=0.01))
    module, result = trainer.fit(LogReg(), Rows(x, y), valid)
    assert result.stopped == "early_stopping"
    assert len(result.epochs) == result.best_epoch + 3
    aucs = [e["val_auc"] for e in result.epochs]
    assert result.best_auc == max(aucs)
    assert roc_auc(valid["label"], trainer.predict(module, valid, torch.device("cpu"))) == pytest.approx(result.best_auc)


def test_time_budget_stops_within_an_epoch() -> None:
    x, y = _xy(20000)
    src = Rows(x, y)
    _, result = Trainer(_cfg(max_epochs=100, batch_size=16, time_budget=0.02)).fit(LogReg(), src)
    assert result.stopped == "time_budget"
    assert src.epochs == 1 and result.epochs[0]["samples"] < 20000


def test_predict_chunks_do_not_change_results() -> None:
    x, y = _xy(1000)
    module, _ = Trainer(_cfg(max_epochs=1)).fit(LogReg(), Rows(x, y))
    a = Trainer(_cfg(eval_batch_size=7)).predict(module, {"x": x}, torch.device("cpu"))
    b = Trainer(_cfg(eval_batch_size=4096)).predict(module, {"x": x}, torch.device("cpu"))
    np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-6)


def test_lazy_adam_equals_adam_when_every_row_has_a_gradient_and_leaves_unused_rows_alone() -> None:
    from recsys.models.deep.trainer import lazy_adam

    torch.manual_seed(0)
    dense = torch.nn.Embedding(6, 3)
    lazy = torch.nn.Embedding(6, 3, sparse=True)
    with torch.no_grad():
        lazy.weight.copy_(dense.weight)
    ref = torch.optim.Adam(dense.parameters(), lr=0.05, foreach=False)
    opt = lazy_adam([lazy.weight], lr=0.05)
    g = torch.Generator().manual_seed(1)
    for _ in range(5):  # every step uses every row, some twice: Adam's and LazyAdam's updates coincide
        idx = torch.cat([torch.randperm(6, generator=g), torch.randint(0, 6, (4,), generator=g)])
        up = torch.randn(len(idx), 3, generator=g)
        for emb, o in ((dense, ref), (lazy, opt)):
            o.zero_grad()
            (emb(idx) * up).sum().backward()
            o.step()
        assert lazy.weight.grad is not None and lazy.weight.grad.is_sparse
    torch.testing.assert_close(lazy.weight, dense.weight, rtol=1e-6, atol=1e-7)
    # a step on rows 1 and 4 only: the others, and their moments, stay where they were
    before = lazy.weight.detach().clone()
    m_before = opt.state[lazy.weight]["m"].clone()
    opt.zero_grad()
    lazy(torch.tensor([1, 4, 4])).sum().backward()
    opt.step()
    moved = (lazy.weight != before).any(1).tolist()
    assert moved == [False, True, False, False, True, False]
    assert torch.equal(opt.state[lazy.weight]["m"][[0, 2, 3, 5]], m_before[[0, 2, 3, 5]])
