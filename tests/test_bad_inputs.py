"""The reliability drill's list of bad inputs stays answered: every one gets a clear library error or a 4xx."""

from __future__ import annotations

from tests.conftest import require


def test_every_bad_input_gets_a_clear_answer(capsys) -> None:  # type: ignore[no-untyped-def]
    require("fastapi")
    require("httpx")
    from benchmarks.bad_inputs import FAILED, ROWS, main

    assert main() == 0, FAILED
    out = capsys.readouterr().out
    assert len(ROWS) >= 40
    assert f"{len(ROWS)} bad inputs tried, 0 failed" in out
