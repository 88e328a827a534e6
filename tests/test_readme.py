"""Every Python block of README.md runs as written, so the README cannot drift from the code.

Blocks are grouped by the README's ``## `` sections: the blocks of one section run in order in one fresh
namespace (a later block may use the names an earlier one defined, as a reader would run them, e.g. the
Quick start's models in its Explanations), each section in its own namespace and in a fresh temporary
working directory (blocks may write ``models/...``). A block whose first line is ``# needs: ml-100k`` runs
with ``RECSYS_DATA_DIR`` pointing at MovieLens-100K (the ``ml100k_dir`` fixture: skipped when no copy is
found, nothing is downloaded); it and the section's later blocks are skipped without it. A block that
imports ``recsys.serving`` needs the ``serve`` extra (skipped locally without it, as every optional test).
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.conftest import require

README = Path(__file__).resolve().parents[1] / "README.md"
NEEDS_DATA = "# needs: ml-100k"


def _sections() -> dict[str, list[str]]:
    """``## `` section title -> its ```python blocks, in order (sections without one are left out)."""
    out: dict[str, list[str]] = {}
    title = "(top)"
    in_block: list[str] | None = None
    for line in README.read_text(encoding="utf-8").splitlines():
        if in_block is not None:
            if line.strip() == "```":
                out.setdefault(title, []).append("\n".join(in_block) + "\n")
                in_block = None
            else:
                in_block.append(line)
        elif line.startswith("```python"):
            in_block = []
        elif line.startswith("## "):
            title = line[3:].strip()
    assert in_block is None, "README.md ends inside a ```python block"
    return out


SECTIONS = _sections()


def test_the_readme_has_python_blocks_and_a_quick_start() -> None:
    assert "Quick start" in SECTIONS and any(b.startswith(NEEDS_DATA) for b in SECTIONS["Quick start"])
    assert sum(len(b) for b in SECTIONS.values()) >= 4


@pytest.mark.parametrize("section", sorted(SECTIONS))
def test_readme_section_runs(section: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest) -> None:
    monkeypatch.chdir(tmp_path)
    slug = re.sub(r"\W+", "_", section)
    namespace: dict[str, object] = {"__name__": f"readme_{slug}"}
    for n, block in enumerate(SECTIONS[section]):
        if block.startswith(NEEDS_DATA):
            data_dir = request.getfixturevalue("ml100k_dir")  # skips the rest of the section without the data
            monkeypatch.setenv("RECSYS_DATA_DIR", data_dir)
        if "recsys.serving" in block:
            require("fastapi")
        code = compile(block, f"README.md [{section}, python block {n + 1}]", "exec")
        exec(code, namespace)
