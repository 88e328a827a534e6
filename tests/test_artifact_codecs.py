"""Persistence reaches models and indexes only through the codecs they register, and reads older artifacts."""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import recsys.persistence
from recsys import load_model
from recsys._utils import registry
from recsys.errors import ArtifactError
from recsys.models import Popular
from recsys.testing import CONTRACT_CASES, tiny_interactions

ROOT = Path(__file__).resolve().parents[1]
LEGACY = Path(__file__).parent / "fixtures" / "artifacts_v1"


def _runtime_imports(path: Path) -> set[str]:
    """Modules a file imports when it runs (``if TYPE_CHECKING:`` blocks are for annotations only)."""
    tree = ast.parse(path.read_text())
    found: set[str] = set()

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING":
            for child in node.orelse:
                visit(child)
            return
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
            found.update(f"{node.module}.{a.name}" for a in node.names)
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(tree)
    return found


@pytest.mark.parametrize("module", ["recsys/persistence.py", "recsys/_state_spec.py"])
def test_persistence_imports_no_model_and_no_index(module: str) -> None:
    imports = _runtime_imports(ROOT / module)
    assert "recsys.persistence" in _runtime_imports(ROOT / "recsys/__init__.py")  # the walker sees imports at all
    offending = sorted(m for m in imports if m.split(".")[:2] in (["recsys", "models"], ["recsys", "index"]))
    assert offending == []
    source = (ROOT / module).read_text()
    assert '"ItemIndex"' not in source and "'ItemIndex'" not in source  # no recognising classes by name


def _run(code: str) -> str:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=ROOT, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    return out.stdout


def test_importing_persistence_imports_no_model() -> None:
    loaded = json.loads(_run(
        "import json, sys, recsys.persistence; "
        "print(json.dumps(sorted(m for m in sys.modules if m.startswith(('recsys.models', 'recsys.index')))))"
    ))
    assert loaded == []


def _recommendations(model: Any, users: list[Any], k: int = 3) -> dict[str, list[Any]]:
    recs = model.recommend(users, k=k)
    return {str(u): recs.loc[recs["user"] == u, "item"].tolist() for u in users}


def test_every_model_loads_when_only_load_model_was_imported(tmp_path: Path) -> None:
    expected = {}
    for name, case in CONTRACT_CASES.items():
        model = case.factory().fit(case.data())
        model.save(tmp_path / name)
        expected[name] = {"class": type(model).__name__, "recs": _recommendations(model, case.data().users.ids[:4].tolist())}
    code = (
        "import json, sys\n"
        "from recsys import load_model\n"
        "assert 'recsys.models' not in sys.modules\n"
        "out = {}\n"
        f"for name in {sorted(expected)!r}:\n"
        f"    m = load_model({str(tmp_path)!r} + '/' + name)\n"
        "    users = m.users_.ids[:4].tolist()\n"
        "    recs = m.recommend(users, k=3)\n"
        "    out[name] = {'class': type(m).__name__, "
        "'recs': {str(u): recs.loc[recs['user'] == u, 'item'].tolist() for u in users}}\n"
        "print(json.dumps(out, default=int))\n"
    )
    got = json.loads(_run(code))
    assert set(got) == set(CONTRACT_CASES) and len(got) >= 10
    for name in expected:
        assert got[name]["class"] == expected[name]["class"], name
        assert got[name]["recs"] == json.loads(json.dumps(expected[name]["recs"], default=int)), name


def _upgraded(config: Any) -> Any:
    """A saved model config with every (nested) model's parameters in today's spelling."""
    if isinstance(config, list):
        return [_upgraded(c) for c in config]
    if not isinstance(config, dict):
        return config
    if set(config) == {"class", "params"} and isinstance(config["class"], str):
        cls = registry.resolve(config["class"])
        return {"class": config["class"], "params": cls._upgrade_params({k: _upgraded(v) for k, v in config["params"].items()})}
    return {k: _upgraded(v) for k, v in config.items()}


@pytest.mark.parametrize("name", ["itemknn", "als", "blend"])
def test_artifacts_saved_before_the_codec_registry_still_load(name: str, tmp_path: Path) -> None:
    expected = json.loads((LEGACY / "expected.json").read_text())[name]
    model = load_model(LEGACY / name)
    assert _recommendations(model, list(expected)) == expected
    # and saving it again writes the same state description and the same array bytes as the old code did
    again = model.save(tmp_path / name)
    old_manifest = json.loads((LEGACY / name / "manifest.json").read_text())
    new_manifest = json.loads((again / "manifest.json").read_text())
    # the same model description, up to parameters added since with their old meaning (ALS's values=,
    # ItemKNN's neighbours_of=), nested models' included
    assert new_manifest["model"] == _upgraded(old_manifest["model"])
    old_state = json.loads((LEGACY / name / "state.json").read_text())
    assert json.loads((again / "state.json").read_text()) == _upgraded(old_state)
    # every array file byte for byte; state.json too unless it holds a nested model with a newer parameter
    rewritten = {"state.json"} if _upgraded(old_state) != old_state else set()
    strip = lambda files: {k: v for k, v in files.items() if k not in rewritten}  # noqa: E731
    assert strip(new_manifest["files"]) == strip(old_manifest["files"])


def test_the_index_fixture_goes_through_the_index_codec() -> None:
    state = json.loads((LEGACY / "als" / "state.json").read_text())
    assert set(state["index_"]) == {"__itemindex__", "arrays"}
    model = load_model(LEGACY / "als")
    assert type(model.index_) is registry.codec_for_tag("__itemindex__").cls
    assert registry.codec_for(model.index_) is registry.codec_for_tag("__itemindex__")
    assert registry.codec_for(model) is registry.codec_for_tag("__model__")
    assert registry.codec_for(np.zeros(3)) is None


class Pair:
    """A user-defined object a model keeps in its state; stored through a codec its author registers."""

    def __init__(self, label: str, values: np.ndarray) -> None:
        self.label, self.values = label, values


class WithPair(Popular):
    def _fit(self, data: Any) -> None:
        super()._fit(data)
        self.pair_ = Pair("top", np.asarray(self.popularity_) + 1.0)


def _build_pair(config: Any, arrays: Any) -> Pair:
    if not isinstance(config, dict) or not isinstance(config.get("label"), str):
        raise ArtifactError(f"a Pair config needs a 'label' string; got {config!r:.60}")
    return Pair(config["label"], arrays["values"])


def test_a_class_registering_its_own_codec_is_saved_and_loaded(tmp_path: Path) -> None:
    model = WithPair().fit(tiny_interactions())
    with pytest.raises(ArtifactError, match="cannot save attribute 'pair_' of type Pair"):
        model.save(tmp_path / "before")
    codec = registry.StateCodec(
        "__pair__", Pair, "arrays", lambda p: {"label": p.label}, lambda p: {"values": p.values}, _build_pair, "a pair"
    )
    registry.register_codec(codec)
    try:
        path = model.save(tmp_path / "m")
        state = json.loads((path / "state.json").read_text())
        assert state["pair_"]["__pair__"] == {"label": "top"}
        loaded = load_model(path)
        assert loaded.pair_.label == "top"
        np.testing.assert_array_equal(loaded.pair_.values, np.asarray(model.popularity_) + 1.0)
        # a broken config is reported against the field, like any other damaged entry
        state["pair_"]["__pair__"] = {"label": 3}
        (path / "state.json").write_text(json.dumps(state))
        with pytest.raises(ArtifactError, match="field 'pair_' a Pair config needs a 'label' string"):
            load_model(path, verify=False)
    finally:
        registry._CODECS.pop("__pair__", None)


def test_unknown_marker_keys_are_still_refused(tmp_path: Path) -> None:
    path = Popular().fit(tiny_interactions()).save(tmp_path / "m")
    state = json.loads((path / "state.json").read_text())
    state["popularity_"] = {"__pair__": {}, "arrays": {}}  # no codec registered under this tag
    (path / "state.json").write_text(json.dumps(state))
    with pytest.raises(ArtifactError, match="field 'popularity_' is not a valid state entry"):
        load_model(path, verify=False)
    assert recsys.persistence.FORMAT_VERSION == 1  # the format did not change
