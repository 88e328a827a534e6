"""Every bad input of the trust drill, tried for real, with the answer it gets now.

Each case builds the input (tiny synthetic data, a scratch directory), runs the call and prints what
came back: the exception class and message, the CLI's exit code and stderr, or the HTTP status and
body. A case whose answer is not the expected kind (a clear library error, exit code 2, a 4xx with the
``{error, detail}`` body, an intact file) is marked FAILED and the script exits 1. Quick (about 10 s)::

    python -m benchmarks.bad_inputs            # markdown table on stdout

The table is pasted into ``benchmarks/results/reliability.md``.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import shutil
import sys
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from recsys import Interactions
from recsys.errors import RecsysError
from recsys.models import ItemKNN, Popular, UserKNN
from recsys.persistence import load_model
from recsys.testing import tiny_interactions

ROWS: list[tuple[str, str, str]] = []
FAILED: list[str] = []


SCRATCH: list[str] = []


def _short(text: str, limit: int = 400) -> str:
    for d in SCRATCH:  # no machine paths in the committed table
        text = text.replace(d, "<scratch>")
    text = " ".join(text.split()).replace("|", "\\|")
    return text if len(text) <= limit else text[: limit - 3] + "..."


def expect_error(what: str, call: Callable[[], Any], kinds: tuple[type[BaseException], ...] = (RecsysError,)) -> None:
    """Run ``call``; it must raise one of ``kinds`` (library errors), nothing else and not succeed."""
    try:
        call()
    except kinds as e:
        ROWS.append((what, "ok", f"`{type(e).__name__}`: {_short(str(e))}"))
        return
    except Exception as e:  # noqa: BLE001 - a raw exception is exactly what this drill looks for
        ROWS.append((what, "FAILED", f"raw `{type(e).__name__}`: {_short(str(e))}"))
        FAILED.append(what)
        return
    ROWS.append((what, "FAILED", "no error"))
    FAILED.append(what)


def expect_value(what: str, call: Callable[[], str]) -> None:
    """Run ``call``; it returns a description of the (correct) outcome or raises AssertionError."""
    try:
        ROWS.append((what, "ok", _short(call())))
    except Exception as e:  # noqa: BLE001
        ROWS.append((what, "FAILED", f"`{type(e).__name__}`: {_short(str(e))}"))
        FAILED.append(what)


@contextlib.contextmanager
def scratch() -> Iterator[Path]:
    d = Path(tempfile.mkdtemp(prefix="recsys-bad-inputs-"))
    SCRATCH.append(str(d))
    try:
        yield d
    finally:
        shutil.rmtree(d, ignore_errors=True)


def cli(argv: list[str]) -> tuple[int, str]:
    from recsys.cli import main

    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        try:
            code = main(argv)
        except SystemExit as e:
            code = int(e.code or 0)
    return code, err.getvalue().strip()


def saving(base: Path) -> None:
    model = Popular().fit(tiny_interactions())
    ratings = base / "data"
    ratings.mkdir()
    (ratings / "ratings.csv").write_text("user,item\n1,2\n")
    (ratings / "notes.txt").write_text("mine")
    expect_error("`model.save(dir)` where dir holds a user's files", lambda: model.save(ratings))
    expect_error(
        "`model.save(dir, overwrite=True)` where dir holds a user's files",
        lambda: model.save(ratings, overwrite=True),
    )
    expect_error("`model.save(file)` on an existing CSV", lambda: model.save(ratings / "ratings.csv"))

    csv = ratings / "ratings.csv"

    def cli_out(out: str) -> str:
        code, err = cli(["fit", "--model", "popular", "--data", str(csv), "--out", out])
        intact = csv.read_text() == "user,item\n1,2\n" and (ratings / "notes.txt").read_text() == "mine"
        assert code == 2 and intact, f"exit {code}, files intact: {intact}"
        return f"exit 2, files intact; stderr: {err}"

    expect_value("`recsys fit --model popular --data ratings.csv --out .` (the data's directory)", lambda: cli_out(str(ratings)))
    expect_value("`recsys fit ... --out ratings.csv` (the input file)", lambda: cli_out(str(csv)))

    def tune_out() -> str:
        code, err = cli(["tune", "--model", "popular", "--data", str(csv), "--split", "none", "--out", str(csv)])
        intact = csv.read_text() == "user,item\n1,2\n"
        assert code == 2 and intact, f"exit {code}, file intact: {intact}"
        return f"exit 2, file intact; stderr: {err}"

    expect_value("`recsys tune ... --out ratings.csv` (a JSON report over the input file)", tune_out)

    def tuning_save() -> None:
        from recsys.tuning import search

        search(Popular(), {"half_life": [None]}, tiny_interactions(), path=csv, show_progress=False)

    expect_error("`recsys.tuning.search(..., path='ratings.csv')`", tuning_save)

    from recsys.serving import publish

    root = base / "served"
    publish(model, root)
    expect_error("`model.save(root / 'current')` on a served model root", lambda: model.save(root / "current"))

    class Broken(Popular):
        def _score(self, user_idx: Any, item_idx: Any) -> Any:
            raise RuntimeError("scoring is broken")

        def _topk_users(self, *args: Any) -> Any:  # Popular's own top-k does not go through _score
            raise RuntimeError("scoring is broken")

    before = os.readlink(root / "current")

    def bad_publish() -> None:
        try:
            publish(Broken().fit(tiny_interactions()), root)
        finally:
            assert os.readlink(root / "current") == before, "current changed"

    expect_error("`publish` of a version that cannot answer", bad_publish)

    def umask_mode() -> str:
        target = base / "perm"
        model.save(target)
        mode = target.stat().st_mode & 0o777
        want = 0o777 & ~_umask()
        assert mode == want, f"mode {mode:o}, umask allows {want:o}"
        return f"artifact directory mode {mode:o} (umask {_umask():03o})"

    expect_value("artifact directory permissions", umask_mode)


def _umask() -> int:
    m = os.umask(0)
    os.umask(m)
    return m


def _rehash(d: Path) -> None:
    import hashlib

    manifest = json.loads((d / "manifest.json").read_text())
    for rel, entry in manifest["files"].items():
        data = (d / rel).read_bytes()
        entry.update(sha256=hashlib.sha256(data).hexdigest(), size=len(data))
    (d / "manifest.json").write_text(json.dumps(manifest))


def loading(base: Path) -> None:
    model = ItemKNN(k=5).fit(tiny_interactions())
    good = base / "good"
    model.save(good)

    def variant(name: str) -> Path:
        d = base / name
        shutil.copytree(good, d, symlinks=True)
        return d

    def array_edit(name: str, part: str, edit: Callable[[np.ndarray], None]) -> Callable[[], None]:
        """Edit the similarity graph's ``part`` array in place, recompute the hashes, load and recommend."""

        def run() -> None:
            d = variant(name)
            arr = next(p for p in sorted(d.glob(f"arrays/*neighbours*{part}*.npy")))
            a = np.load(arr)
            edit(a)
            np.save(arr, a)
            _rehash(d)
            load_model(d).recommend([0], k=3)

        return run

    def out_of_range(a: np.ndarray) -> None:
        a[0] = 10**8

    def swap(a: np.ndarray) -> None:
        a[1], a[2] = a[2], a[1] + 1

    expect_error("similarity `indices` set to 10**8, hashes recomputed", array_edit("oob", "indices", out_of_range))
    expect_error("non-monotone `indptr`, hashes recomputed", array_edit("indptr", "indptr", swap))

    def symlink() -> None:
        d = variant("link")
        outside = base / "outside.npy"
        victim = next(p for p in sorted(d.glob("arrays/*.npy")))
        shutil.copy(victim, outside)
        victim.unlink()
        victim.symlink_to(outside)
        load_model(d, verify=False)

    expect_error("a symlink inside the artifact (`verify=False`)", symlink)

    def traversal() -> None:
        d = variant("trav")
        text = (d / "state.json").read_text()
        rel = next(p.relative_to(d).as_posix() for p in sorted(d.glob("arrays/*.npy")))
        shutil.copy(d / rel, base / "x.npy")
        (d / "state.json").write_text(text.replace(f'"{rel}"', '"../x.npy"'))
        load_model(d, verify=False)

    expect_error("state path `../x.npy` with `verify=False`", traversal)

    def manifest_edit(name: str, edit: Callable[[dict[str, Any]], Any]) -> Callable[[], None]:
        def run() -> None:
            d = variant(name)
            m = json.loads((d / "manifest.json").read_text())
            m = edit(m)
            (d / "manifest.json").write_text(m if isinstance(m, str) else json.dumps(m))
            load_model(d)

        return run

    expect_error("manifest.json: `files` is a list", manifest_edit("m1", lambda m: {**m, "files": []}))
    expect_error("manifest.json: unknown key", manifest_edit("m2", lambda m: {**m, "surprise": 1}))
    expect_error("manifest.json: 100,000 nested lists", manifest_edit("m3", lambda m: "[" * 100_000 + "]" * 100_000))
    expect_error("manifest.json: not JSON", manifest_edit("m4", lambda m: "{not json"))

    def npz() -> None:
        d = variant("npz")
        victim = next(p for p in sorted(d.glob("arrays/*.npy")))
        np.savez(victim.with_suffix(".npz"), a=np.load(victim))
        os.replace(victim.with_suffix(".npz"), victim)
        _rehash(d)
        load_model(d)

    expect_error("an `.npz` archive in place of an `.npy`, hashes recomputed", npz)


def fitting() -> None:
    base = tiny_interactions()

    def failed_fit_keeps_model() -> str:
        model = ItemKNN(k=5).fit(base)
        before = model.recommend([0, 1], k=5)
        bad = pd.DataFrame({"user": [1, 2], "item": [1, 2], "weight": [1.0, float("nan")]})
        try:
            model.fit(Interactions.from_frame(bad, weight_col="weight"))
        except RecsysError as e:
            msg = f"`{type(e).__name__}`: {e}"
        else:
            raise AssertionError("the bad fit did not raise")
        after = model.recommend([0, 1], k=5)
        assert before.equals(after), "recommendations changed"
        return f"{msg}; the model still answers as before the call"

    expect_value("`ItemKNN.fit(good)` then a `fit` that raises", failed_fit_keeps_model)

    frame = pd.DataFrame({"user": [1, 2], "item": [1, 2], "weight": [1.0, 1e39]})
    expect_error("weight 1e39 (overflows float32)", lambda: Interactions.from_frame(frame, weight_col="weight"))

    def ts_strings() -> str:
        f = pd.DataFrame({"user": [1, 2], "item": [1, 2], "ts": ["881250949", "891250949"]})
        data = Interactions.from_frame(f, timestamp_col="ts")
        assert data.timestamps is not None
        return f"parsed: {data.timestamps.tolist()}"

    expect_value("numeric-string timestamps `'881250949'`", ts_strings)
    mixed = pd.DataFrame({"user": [1, 2], "item": [1, 2], "ts": ["881250949", "yesterday"]})
    expect_error("timestamps mixing numbers and text", lambda: Interactions.from_frame(mixed, timestamp_col="ts"))
    tuples = pd.DataFrame({"user": [(1, 2), (3, 4)], "item": [1, 2]})
    expect_error("tuple user ids", lambda: Interactions.from_frame(tuples))
    raw = pd.DataFrame({"user": [1, 2], "item": [b"a", b"b"]})
    expect_error("bytes item ids", lambda: Interactions.from_frame(raw))

    model = ItemKNN(k=5).fit(base)
    expect_error("`recommend_one(u, on_unknown='bogus')`", lambda: model.recommend_one(0, on_unknown="bogus"))
    single = Interactions.from_frame(pd.DataFrame({"user": [1, 1, 1], "item": [1, 2, 3]}))
    expect_error("`ItemKNN().fit(single-user data)`", lambda: ItemKNN().fit(single))
    expect_error("`UserKNN().fit(single-user data)`", lambda: UserKNN().fit(single))
    expect_error("`recommend_history([])`", lambda: model.recommend_history([], k=3))
    expect_error("`recommend_history(['unknown'])`", lambda: model.recommend_history(["nope"], k=3))

    def popular_fallback() -> str:
        got = model.recommend_history(["nope"], k=3, on_unknown_items="popular")[0].tolist()
        popular = Popular().fit(base).recommend_history([], k=3, on_unknown_items="popular")[0].tolist()
        assert got == popular, f"{got} != popular {popular}"
        return f"answers the popular items {got}"

    expect_value("`recommend_history(['unknown'], on_unknown_items='popular')`", popular_fallback)


def http() -> None:
    from fastapi.testclient import TestClient

    from recsys.serving import create_app

    with scratch() as base:
        ItemKNN(k=5).fit(tiny_interactions()).save(base / "m")
        with TestClient(create_app(base / "m")) as client:
            _http_cases(client)


def _http_cases(client: Any) -> None:
    cases = [
        ("GET /recommend?user=0&k=true", lambda: client.get("/recommend", params={"user": "0", "k": "true"})),
        ("GET /recommend?user=0&k=5.0", lambda: client.get("/recommend", params={"user": "0", "k": "5.0"})),
        ("POST /recommend (history) with `k: \"5\"`", lambda: client.post("/recommend", json={"items": [0], "k": "5"})),
        ("GET /recommend?user=0&user=1 (repeated)", lambda: client.get("/recommend?user=0&user=1")),
        ("GET /recommend?user=0&k=0", lambda: client.get("/recommend", params={"user": "0", "k": "0"})),
        ("GET /recommend?user=nobody", lambda: client.get("/recommend", params={"user": "nobody"})),
        ("POST /recommend, body not JSON", lambda: client.post("/recommend", content=b"\xff", headers={"content-type": "application/json"})),
        ("POST /recommend, history of unknown items only", lambda: client.post("/recommend", json={"items": ["nope"]})),
        ("POST /recommend, empty history", lambda: client.post("/recommend", json={"items": []})),
        ("DELETE /recommend", lambda: client.delete("/recommend")),
    ]
    for what, call in cases:
        r = call()
        ok = 400 <= r.status_code < 500
        try:
            body = r.json()
            ok = ok and isinstance(body, dict) and {"error", "detail"} <= set(body)
        except ValueError:
            body, ok = r.text, False
        ROWS.append((what, "ok" if ok else "FAILED", f"{r.status_code} `{_short(json.dumps(body), 300)}`"))
        if not ok:
            FAILED.append(what)
    head = client.head("/recommend", params={"user": "0"})
    get = client.get("/recommend", params={"user": "0"})
    ok = head.status_code == get.status_code == 200 and head.content == b""
    ROWS.append(("HEAD /recommend?user=0", "ok" if ok else "FAILED", f"HEAD {head.status_code}, empty body; GET {get.status_code}"))
    if not ok:
        FAILED.append("HEAD")


def main() -> int:
    with scratch() as base:
        saving(base)
    with scratch() as base:
        loading(base)
    fitting()
    http()
    print("| bad input | outcome | answer |")
    print("|---|---|---|")
    for what, outcome, answer in ROWS:
        print(f"| {what} | {outcome} | {answer} |")
    print(f"\n{len(ROWS)} bad inputs tried, {len(FAILED)} failed" + (f": {FAILED}" if FAILED else ""))
    return 1 if FAILED else 0


if __name__ == "__main__":
    sys.exit(main())
