"""The serving package's modules were split by job; every name importable before still imports, as the same object."""

from __future__ import annotations

import importlib

import pytest

from tests.conftest import require

#: The public names of each module before the split (their ``__all__`` then).
BEFORE = {
    "recsys.serving": [
        "CURRENT", "ENV_CONFIG", "VERSIONS", "IdParser", "LoadedModel", "ModelStore", "ReloadFailure", "ServeConfig",
        "activate", "create_app", "current_version", "load_version", "publish", "resolve_artifact", "run",
    ],
    "recsys.serving._store": [
        "CURRENT", "VERSIONS", "LoadedModel", "ModelStore", "ReloadFailure", "activate", "current_version",
        "is_artifact", "load_version", "publish", "resolve_artifact",
    ],
    "recsys.serving._app": ["ApiError", "BodyLimit", "app_from_env", "create_app", "error_for"],
}

#: Where each moved name lives now.
HOME = {
    "CURRENT": "recsys.serving._layout",
    "VERSIONS": "recsys.serving._layout",
    "activate": "recsys.serving._layout",
    "current_version": "recsys.serving._layout",
    "is_artifact": "recsys.serving._layout",
    "publish": "recsys.serving._layout",
    "resolve_artifact": "recsys.serving._layout",
    "ApiError": "recsys.serving._errors",
    "BodyLimit": "recsys.serving._errors",
    "error_for": "recsys.serving._errors",
}


@pytest.mark.parametrize("module", sorted(BEFORE))
def test_every_name_still_imports(module: str) -> None:
    if module.endswith("_app"):
        require("fastapi")
    mod = importlib.import_module(module)
    missing = [name for name in BEFORE[module] if not hasattr(mod, name)]
    assert missing == []
    for name in BEFORE[module]:
        if name in HOME:  # a re-export, not a copy
            assert getattr(mod, name) is getattr(importlib.import_module(HOME[name]), name), (module, name)


def test_the_deprecated_reload_error_still_resolves_from_both() -> None:
    from recsys.serving import ReloadFailure

    for module in ("recsys.serving", "recsys.serving._store"):
        with pytest.warns(DeprecationWarning, match="use ReloadFailure"):
            assert importlib.import_module(module).ReloadError is ReloadFailure


def test_layout_does_not_import_the_store_at_load_time() -> None:
    # the layout module is the lower layer: the store imports it, never the reverse at import time
    import ast
    from pathlib import Path

    import recsys.serving._layout as layout

    tree = ast.parse(Path(layout.__file__).read_text())
    top = [n for n in tree.body if isinstance(n, (ast.Import, ast.ImportFrom))]
    assert not any(isinstance(n, ast.ImportFrom) and n.module == "recsys.serving._store" for n in top)
