"""Every pytest marker the project declares is used by some test (``--strict-markers`` checks the converse)."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_every_declared_marker_is_used() -> None:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["pytest"]["ini_options"]
    declared = {m.split(":")[0].strip() for m in config.get("markers", [])}
    used = {
        name
        for path in (ROOT / "tests").rglob("*.py")
        for name in re.findall(r"pytest\.mark\.([A-Za-z_]\w*)", path.read_text())
    }
    assert "gpu" in declared  # the parse found the declarations
    assert sorted(declared - used) == []
