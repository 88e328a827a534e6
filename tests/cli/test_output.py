"""JSON results: written atomically, and they replace only a JSON result recsys wrote, never the user's files."""

from __future__ import annotations

import json
import os

import pytest

from recsys.cli._errors import UsageError
from recsys.cli._output import check_json_target, write_json
from tests.cli.conftest import SYN

TUNE = ("tune", "--model", "popular", *SYN, "--space", "half_life=null")


def test_tune_refuses_to_overwrite_a_data_file_before_searching(cli, tmp_path):
    data = tmp_path / "ratings.csv"
    data.write_text("user,item\n1,2\n")
    code, _, err = cli(*TUNE, "--out", data)
    assert code == 2
    assert err.strip().startswith(f"recsys tune: error: refusing to write --out {data}: it exists and is not a JSON result written by recsys")
    assert "tuning Popular" not in err  # refused before loading the data and searching
    assert data.read_text() == "user,item\n1,2\n"


def test_tune_refuses_another_programs_json_and_a_directory(cli, tmp_path):
    other = tmp_path / "config.json"
    other.write_text('{"format": "something-else", "keep": true}')
    code, _, err = cli(*TUNE, "--out", other)
    assert code == 2 and str(other) in err
    assert json.loads(other.read_text()) == {"format": "something-else", "keep": True}
    code, _, err = cli(*TUNE, "--out", tmp_path)
    assert code == 2 and "not a regular file" in err


def test_tune_replaces_its_own_result(cli, tmp_path):
    out = tmp_path / "s.json"
    assert cli(*TUNE, "--out", out)[0] == 0
    first = json.loads(out.read_text())
    assert first["format"] == "recsys-tuning"
    out.write_text(json.dumps({**first, "marker": 1}))
    code, _, err = cli(*TUNE, "--out", out)
    assert code == 0, err
    assert "marker" not in json.loads(out.read_text())
    assert sorted(os.listdir(tmp_path)) == ["s.json"]  # no temporary file left behind


def test_evaluate_json_is_marked_and_refuses_foreign_files(cli, tmp_path, ratings_csv):
    cols = ("--user-col", "uid", "--item-col", "iid")
    cli("fit", "--model", "popular", "--data", ratings_csv, *cols, "--split", "stratified", "--out", tmp_path / "m")
    out = tmp_path / "e.json"
    code, _, err = cli("evaluate", "--model", tmp_path / "m", "--data", ratings_csv, *cols, "--json", out)
    assert code == 0, err
    assert json.loads(out.read_text())["format"] == "recsys-evaluation"
    code, _, err = cli("evaluate", "--model", tmp_path / "m", "--data", ratings_csv, *cols, "--json", ratings_csv)
    assert code == 2 and f"refusing to write --json {ratings_csv}" in err
    assert ratings_csv.read_text().startswith("uid,iid,stars,ts")


def test_benchmark_refuses_a_foreign_results_json(cli, tmp_path):
    (tmp_path / "results.json").write_text("[1, 2, 3]")
    code, _, err = cli("benchmark", *SYN, "--models", "popular", "--no-plots", "--out", tmp_path)
    assert code == 2 and "results.json" in err
    assert (tmp_path / "results.json").read_text() == "[1, 2, 3]"


def test_write_json_needs_a_recsys_format_and_writes_strict_json(tmp_path):
    with pytest.raises(ValueError, match="format"):
        write_json(str(tmp_path / "x.json"), {"a": 1})
    assert not (tmp_path / "x.json").exists()
    write_json(str(tmp_path / "sub" / "x.json"), {"format": "recsys-test", "nan": float("nan")})
    assert json.loads((tmp_path / "sub" / "x.json").read_text()) == {"format": "recsys-test", "nan": None}
    bad = tmp_path / "bad.json"
    bad.write_text("not json")
    with pytest.raises(UsageError) as e:
        check_json_target(str(bad), "--json")
    assert e.value.code == 2 and str(bad) in str(e.value)


def test_recommend_refuses_text_ids_on_an_integer_map(cli, tmp_path, ratings_csv):
    cli("fit", "--model", "popular", "--data", ratings_csv, "--user-col", "uid", "--item-col", "iid", "--out", tmp_path / "m")
    code, _, err = cli("recommend", "--model", tmp_path / "m", "--users", "u0", "--items", "3,abc")
    assert code == 1 and err.strip() == "recsys recommend: error: the model's ids are integers; got 'abc'"
    code, out, err = cli("recommend", "--model", tmp_path / "m", "--users", "u0", "--items", "3,5", "--format", "json")
    assert code == 0, err
    assert {r["item"] for r in json.loads(out)["u0"]} <= {3, 5}
