"""Fit DeepFM, DIN, SASRec and GRU4Rec on small synthetic data; run by tests/models/deep/test_ddp.py, under
torchrun or in-process.

Each process writes its parameters (``<model>_params_rank<r>.npz``); the main
process also saves the model and writes its test metric and training log
(``<model>.json``): the AUC of the click models on a temporal split, NDCG@10
of the sequential models on leave-one-out (full ranking, seen items excluded).
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

import numpy as np

from recsys.datasets import synthetic
from recsys.evaluation import Evaluator
from recsys.models import DIN, DeepFM, GRU4Rec, Popular, SASRec
from recsys.models.deep import is_main_process
from recsys.models.deep.trainer import roc_auc
from recsys.split import leave_last_n, temporal_split

COMMON: dict[str, Any] = dict(
    label_threshold=4, hidden_units=[32], embedding_dim=8, epochs=3, batch_size=128, learning_rate=3e-3,
    validation_fraction=0.1, num_threads=1, seed=0, device="cpu", show_progress=False,
)
# no dropout (its draws differ between the processes): a 2-process run then follows the one-process
# optimisation path up to float reduction order, which test_ddp checks
SEQUENTIAL: dict[str, Any] = dict(
    max_len=20, dim=32, dropout=0.0, epochs=6, batch_size=32, learning_rate=1e-2, validation_users=60,
    num_threads=1, seed=0, device="cpu", show_progress=False,
)
# name -> (class, its parameters, "auc" or "ndcg": the metric and data it is tested on)
MODELS: dict[str, Any] = {
    "deepfm": (DeepFM, COMMON, "auc"),
    "din": (DIN, {**COMMON, "attention_units": [16]}, "auc"),
    "sasrec": (SASRec, SEQUENTIAL, "ndcg"),
    "gru4rec": (GRU4Rec, SEQUENTIAL, "ndcg"),
    # the set-completion loss has its own share of each process' positions
    "sasrec-set": (SASRec, {**SEQUENTIAL, "set_loss": 1.0}, "ndcg"),
}


def data() -> tuple[Any, Any]:
    """The click models' temporal split."""
    return temporal_split(synthetic(n_users=250, n_items=120, n_interactions=6000, seed=3), test_fraction=0.2)


def sequences() -> tuple[Any, Any]:
    """The sequential models' leave-one-out split of data with a next-item signal."""
    return leave_last_n(synthetic(n_users=200, n_items=80, n_interactions=4000, seed=3, sequential=0.9), 1)


def ndcg(model: Any) -> float:
    train, test = sequences()
    return float(Evaluator(train, test, k=10, metrics=["ndcg"]).evaluate(model).summary["ndcg@10"])


def popular_ndcg() -> float:
    return ndcg(Popular().fit(sequences()[0]))


def run(out: Path) -> dict[str, float]:
    train, test = data()
    assert test.ratings is not None
    labels = (test.ratings >= 4).astype(np.float32)
    rank = int(os.environ.get("RANK", "0"))
    metrics = {}
    for name, (cls, params, kind) in MODELS.items():
        if kind == "auc":
            model = cls(**params).fit(train)
            p = model.predict_proba(train.users.to_ids(test.user_index), train.items.to_ids(test.item_index), test.timestamps)
            metrics[name] = roc_auc(labels, p)
        else:
            model = cls(**params).fit(sequences()[0])
            metrics[name] = ndcg(model)
        np.savez(out / f"{name}_params_rank{rank}.npz", **model.state_dict_)
        if is_main_process():
            model.save(out / f"{name}_model")
            (out / f"{name}.json").write_text(json.dumps({"metric": metrics[name], "log": model.train_log_}))
    return metrics


if __name__ == "__main__":
    run(Path(sys.argv[1]))
