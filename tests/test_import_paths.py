"""Module paths that existed before the consolidation still import, and give the same objects."""

from __future__ import annotations

import importlib

import pytest

# (old module, name, module the object lives in now)
MOVED = [
    ("recsys.models.mf", "ALS", "recsys.models.als"),
    ("recsys.models.mf", "BPR", "recsys.models.bpr"),
    ("recsys.models.content", "ContentBased", "recsys.models.content_based"),
    ("recsys.models.content", "Hybrid", "recsys.models.content_based"),
    ("recsys.cli._registry", "MODELS", "recsys.models._registry"),
    ("recsys.cli._common", "PeakMemory", "recsys._utils.measure"),
    ("recsys.cli._common", "machine", "recsys._utils.measure"),
    ("recsys.content", "MissingDependencyError", "recsys.errors"),
    ("recsys.content._base", "MissingDependencyError", "recsys.errors"),
    ("recsys.evaluation.evaluator", "EvaluationResult", "recsys.evaluation._result"),
    ("recsys.evaluation.evaluator", "compare", "recsys.evaluation._compare"),
    ("recsys.serving", "IdParser", "recsys.data"),
]


@pytest.mark.parametrize(("old", "name", "new"), MOVED)
def test_old_path_gives_the_same_object(old: str, name: str, new: str) -> None:
    assert getattr(importlib.import_module(old), name) is getattr(importlib.import_module(new), name)


def test_old_class_paths_in_artifacts_still_resolve() -> None:
    from recsys._utils.registry import resolve
    from recsys.models import ALS, BPR, ContentBased, Hybrid

    for path, cls in [
        ("recsys.models.mf.ALS", ALS),
        ("recsys.models.mf.BPR", BPR),
        ("recsys.models.content.ContentBased", ContentBased),
        ("recsys.models.content.Hybrid", Hybrid),
    ]:
        assert resolve(path) is cls
