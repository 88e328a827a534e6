"""The command line: help, one-line errors and exit codes, --debug."""

from __future__ import annotations

import pytest

from recsys.cli import SUBCOMMANDS, main


@pytest.mark.parametrize("command", SUBCOMMANDS)
def test_every_subcommand_has_help(cli, command):
    code, out, _ = cli(command, "--help")
    assert code == 0
    assert out.startswith(f"usage: recsys {command}") and "example" in out


def test_top_level_help_lists_subcommands(cli):
    code, out, _ = cli("--help")
    assert code == 0 and all(c in out for c in SUBCOMMANDS)
    code, _, err = cli()
    assert code == 2 and "usage: recsys" in err


def _one_line(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    return lines[0]


@pytest.mark.parametrize(
    ("argv", "code", "expected"),
    [
        (["benchmark", "--dataset", "ml-99k"], 2, "unknown dataset 'ml-99k'; valid: ml-100k"),
        (["benchmark", "--dataset", "synthetic", "--models", "itemknn,foo"], 2, "unknown model 'foo'; valid: popular"),
        (["benchmark"], 2, "give --dataset NAME or --data FILE"),
        (["benchmark", "--dataset", "synthetic", "--k", "0"], 2, "--k must be positive integers"),
        (["benchmark", "--dataset", "synthetic", "--param", "k=3"], 2, "--param expects MODEL.NAME=VALUE"),
        (["benchmark", "--dataset", "synthetic", "--split", "random"], 2, "unknown split 'random'"),
        (["benchmark", "--no-such-flag"], 2, "unrecognized arguments: --no-such-flag"),
        (["benchmark", "--data", "/nonexistent/r.csv"], 1, "interactions file not found: /nonexistent/r.csv"),
        (["recommend", "--model", "/nonexistent", "--users", "1"], 1, "model directory not found"),
        (["fit", "--model", "ease", "--dataset", "synthetic"], 2, "the following arguments are required: --out"),
        (["datasets", "download", "ml-5k"], 2, "unknown release 'ml-5k'"),
        (["tune", "--model", "ease", "--dataset", "synthetic", "--space", "reg", "--out", "x.json"], 2, "--space expects NAME=v1,v2"),
    ],
)
def test_errors_are_one_line_with_exit_code(cli, argv, code, expected):
    got, out, err = cli(*argv)
    assert got == code
    line = _one_line(err)
    assert line.startswith(f"recsys {argv[0]}: error:") and expected in line
    assert "Traceback" not in err


def test_data_errors_name_the_column(cli, ratings_csv, tmp_path):
    code, _, err = cli("fit", "--model", "popular", "--data", ratings_csv, "--user-col", "user", "--out", tmp_path / "m")
    assert code == 1 and "has no column 'user' (--user-col); columns: uid, iid, stars, ts" in _one_line(err)
    bad = tmp_path / "bad.csv"
    bad.write_text("user,item,rating\n1,2,5\n1,,4\n")
    code, _, err = cli("fit", "--model", "popular", "--data", bad, "--out", tmp_path / "m")
    assert code == 1 and "null" in _one_line(err).lower()


def test_debug_shows_the_traceback(ratings_csv, tmp_path):
    with pytest.raises(Exception, match="no column 'user'"):
        main(["fit", "--debug", "--model", "popular", "--data", str(ratings_csv), "--user-col", "user", "--out", str(tmp_path / "m")])
    with pytest.raises(Exception, match="no column 'user'"):
        main(["--debug", "fit", "--model", "popular", "--data", str(ratings_csv), "--user-col", "user", "--out", str(tmp_path / "m")])
