"""Saved ItemKNN, ALS and EASE artifacts on one small synthetic split, shared by the distributed tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from recsys.datasets import synthetic
from recsys.models import ALS, EASE, ItemKNN
from recsys.split import stratified_split
from tests.conftest import require

require("pyarrow")

MODELS = {"itemknn": lambda: ItemKNN(k=20), "als": lambda: ALS(n_factors=8, n_iterations=3), "ease": lambda: EASE(reg=50.0)}


@pytest.fixture(scope="session")
def split() -> tuple:
    return stratified_split(synthetic(120, 70, 2500, seed=3), ratio=0.75, seed=0)


@pytest.fixture(scope="session")
def artifacts(split: tuple, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("artifacts")
    train = split[0]
    return {name: make().fit(train).save(root / name) for name, make in MODELS.items()}
