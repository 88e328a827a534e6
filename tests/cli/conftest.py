"""Helpers of the CLI tests: run ``main(argv)`` in-process and capture its output."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from recsys.cli import main


@pytest.fixture
def cli(capsys: pytest.CaptureFixture[str]) -> Callable[..., tuple[int, str, str]]:
    def run(*argv: str) -> tuple[int, str, str]:
        code = main([str(a) for a in argv])
        out, err = capsys.readouterr()
        return code, out, err

    return run


@pytest.fixture
def ratings_csv(tmp_path: Path) -> Path:
    """40 users x 30 items in two taste groups (even/odd), string user ids, ratings and timestamps."""
    rng = np.random.default_rng(0)
    rows = []
    for u in range(40):
        own = [i for i in range(30) if i % 2 == u % 2]
        for j, i in enumerate(rng.choice(own, size=10, replace=False)):
            rows.append((f"u{u}", int(i), float(rng.integers(3, 6)), 1000 * u + j))
    path = tmp_path / "ratings.csv"
    pd.DataFrame(rows, columns=["uid", "iid", "stars", "ts"]).to_csv(path, index=False)
    return path


SYN = ("--dataset", "synthetic", "--synthetic-size", "200,120,4000")
