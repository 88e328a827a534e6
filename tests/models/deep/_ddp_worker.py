"""Fit DeepFM and DIN on small synthetic data; run by tests/models/deep/test_ddp.py, under torchrun or in-process.

Each process writes its parameters (``<model>_params_rank<r>.npz``); the main
process also saves the model and writes the test AUC (``<model>.json``).
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

import numpy as np

from recsys.datasets import synthetic
from recsys.models import DIN, DeepFM
from recsys.models.deep import is_main_process
from recsys.models.deep.trainer import roc_auc
from recsys.split import temporal_split

COMMON: dict[str, Any] = dict(
    label_threshold=4, hidden_units=[32], embedding_dim=8, epochs=3, batch_size=128, learning_rate=3e-3,
    validation_fraction=0.1, num_threads=1, seed=0, device="cpu", show_progress=False,
)
MODELS: dict[str, Any] = {"deepfm": (DeepFM, {}), "din": (DIN, {"attention_units": [16]})}


def data() -> tuple[Any, Any]:
    return temporal_split(synthetic(n_users=250, n_items=120, n_interactions=6000, seed=3), test_fraction=0.2)


def run(out: Path) -> dict[str, float]:
    train, test = data()
    assert test.ratings is not None
    labels = (test.ratings >= 4).astype(np.float32)
    rank = int(os.environ.get("RANK", "0"))
    aucs = {}
    for name, (cls, extra) in MODELS.items():
        model = cls(**COMMON, **extra).fit(train)
        np.savez(out / f"{name}_params_rank{rank}.npz", **model.state_dict_)
        p = model.predict_proba(train.users.to_ids(test.user_index), train.items.to_ids(test.item_index), test.timestamps)
        aucs[name] = roc_auc(labels, p)
        if is_main_process():
            model.save(out / f"{name}_model")
            (out / f"{name}.json").write_text(json.dumps({"auc": aucs[name], "log": model.train_log_}))
    return aucs


if __name__ == "__main__":
    run(Path(sys.argv[1]))
