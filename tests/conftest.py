"""Shared fixtures. Under CI=true a missing optional dependency fails instead of skipping."""

from __future__ import annotations

import importlib
import os
from types import ModuleType

import numpy as np
import pytest

IN_CI = os.environ.get("CI", "").lower() == "true"


def require(module: str) -> ModuleType:
    """Import an optional dependency: skip locally when absent, fail under CI (skips hide missing installs)."""
    if IN_CI:
        return importlib.import_module(module)
    return pytest.importorskip(module)


def has_cuda() -> bool:
    try:
        import torch

        return bool(torch.cuda.is_available())
    except ImportError:
        return False


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if has_cuda():
        return
    skip = pytest.mark.skip(reason="needs a CUDA device; none here")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(42)


@pytest.fixture(scope="session")
def ml100k_dir() -> str:
    """The team's ML-100K copy (RECSYS_DATA_DIR or ../shared/datasets); skipped when absent."""
    here = os.path.dirname(os.path.abspath(__file__))
    candidates = [os.environ.get("RECSYS_DATA_DIR", ""), os.path.join(here, "..", "..", "shared", "datasets")]
    for c in candidates:
        if c and os.path.exists(os.path.join(c, "ml-100k", "u.data")):
            return os.path.abspath(c)
    pytest.skip("ML-100K not available locally")
