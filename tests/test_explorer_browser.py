"""The explorer page in a real browser: headless Chromium from the OS packages, driven by Playwright.

Skips (with the reason) when the system browser or the playwright package is missing: ``apt-get install
chromium`` and ``pip install playwright`` (its own browser download is not used). ``RECSYS_CHROMIUM``
points at another Chromium binary. On a failure, a screenshot of the page is saved in the test's
temporary directory (its path is printed).
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tests.conftest import require

require("fastapi")
require("uvicorn")

CHROMIUM = os.environ.get("RECSYS_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
if not os.path.exists(CHROMIUM):
    pytest.skip(
        f"needs the operating system's Chromium at {CHROMIUM} (Debian: apt-get install chromium; or set RECSYS_CHROMIUM)",
        allow_module_level=True,
    )
sync_api = pytest.importorskip("playwright.sync_api", reason="needs the playwright package (pip install playwright; in the 'test' extra)")

from recsys import load_model  # noqa: E402
from recsys.serving import activate, publish  # noqa: E402
from recsys.testing import tiny_interactions  # noqa: E402
from tests.serving.conftest import NoExtras, ThreadServer  # noqa: E402
from tests.test_explorer_api import HOSTILE, build_root  # noqa: E402

SIZES = {"desktop": (1280, 800), "phone": (390, 844)}

#: Click an element and resolve when the page says it rendered ``what`` (its ``explorer:rendered`` event).
CLICK_AND_WAIT = """([selector, what]) => new Promise((resolve) => {
  document.addEventListener("explorer:rendered", function on(e) {
    if (e.detail === what) { document.removeEventListener("explorer:rendered", on); resolve(); }
  });
  document.querySelector(selector).click();
})"""


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_root(tmp_path_factory.mktemp("explorer-browser") / "root")  # ML-100K-shaped


@pytest.fixture(scope="module")
def server(root: Path) -> Iterator[ThreadServer]:
    with ThreadServer(root, poll_interval=0.1) as srv:
        yield srv


@pytest.fixture(scope="module")
def model(root: Path) -> Any:
    return load_model(root / "versions" / "v2")


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield b
        b.close()


@pytest.fixture
def page(browser: Any, server: ThreadServer, request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    pg = context.new_page()
    errors: list[str] = []
    pg.on("pageerror", lambda e: errors.append(str(e)))
    pg.url_base = server.url  # type: ignore[attr-defined]
    pg.set_default_timeout(10_000)
    failed = request.session.testsfailed
    yield pg
    if request.session.testsfailed > failed:  # the call phase failed: keep what the page looked like
        shot = tmp_path / f"{request.node.name}.png"
        pg.screenshot(path=str(shot), full_page=True)
        print(f"screenshot of the failed page: {shot}")
    context.close()
    assert errors == [], f"JavaScript errors on the page: {errors}"


def open_page(pg: Any, path: str = "/explore") -> None:
    pg.goto(pg.url_base + path)
    pg.wait_for_selector("#model-version")


def show_user(pg: Any, user: Any, k: int = 10) -> None:
    pg.fill("#user", str(user))
    pg.select_option("#k", str(k))
    pg.click("#user-form button[type=submit]")
    pg.wait_for_function("document.querySelector('#user-message').textContent !== 'Loading…'")


def ids_of(pg: Any, selector: str) -> list[int]:
    return [int(x) for x in pg.eval_on_selector_all(selector, "els => els.map(e => e.dataset.item)")]


def explanation_rows(pg: Any, li: str) -> list[tuple[str, str, float]]:
    pg.wait_for_selector(f"{li} .explain table")
    rows = pg.eval_on_selector_all(
        f"{li} .explain tbody tr",
        "rs => rs.map(r => [r.dataset.kind, r.dataset.id, Number(r.querySelector('[data-contribution]').dataset.contribution)])",
    )
    return [(k, i, c) for k, i, c in rows]


def no_horizontal_overflow(pg: Any) -> bool:
    return bool(pg.evaluate("document.documentElement.scrollWidth <= document.documentElement.clientWidth"))


# -- the user view ------------------------------------------------------------------------------------------


def test_user_recommendations_and_explanation(page: Any, model: Any) -> None:
    open_page(page)
    assert page.text_content("#model-version") == "v2"
    user = model.users_.ids[3].item()
    show_user(page, user, k=10)
    want, scores = model.recommend_one(user, 10)
    assert ids_of(page, "#recs > li") == want.tolist()
    # the history: newest first, as the artifact's times say
    row = model.history_times_[model.users_.index_of(user)]
    newest = model.items_.to_ids(row.indices[np.lexsort((row.indices, -row.data))][:50]).tolist()
    assert ids_of(page, "#history > li") == newest
    # open the explanation of the second item: its parts are those of model.explain
    item = want[1].item()
    page.click("#recs > li:nth-child(2) .main")
    rows = explanation_rows(page, "#recs > li:nth-child(2)")
    frame = model.explain(user, item, top=5)
    assert [r[0] for r in rows] == frame["kind"].tolist()
    assert [r[1] for r in rows] == ["" if i is None else str(i) for i in frame["id"]]
    np.testing.assert_allclose([r[2] for r in rows], frame["contribution"].to_numpy(), rtol=1e-12)
    assert sum(r[2] for r in rows) == pytest.approx(float(scores[1]), rel=1e-5)
    assert page.get_attribute("#recs > li:nth-child(2) .main", "aria-expanded") == "true"
    # similar items of the first recommendation
    page.click("#recs > li:nth-child(1) button:has-text('similar')")
    page.wait_for_function("document.querySelectorAll('#similar > li').length > 0")
    sim = model.similar_items([want[0].item()], 10)["similar_item"].tolist()
    assert ids_of(page, "#similar > li") == sim
    # and of a history item
    page.click("#history > li:nth-child(1) button:has-text('similar')")
    page.wait_for_function("document.querySelector('#similar-message').textContent !== 'Loading…'")
    assert model.item_info_["title"][model.items_.index_of(newest[0])] in page.text_content("#similar-title")
    assert ids_of(page, "#similar > li") == model.similar_items([newest[0]], 10)["similar_item"].tolist()


def test_hostile_title_is_text(page: Any, model: Any) -> None:
    hostile_id = model.items_.ids[0].item()
    users = model.history_times_[:, 0].nonzero()[0]
    open_page(page)
    show_user(page, model.users_.ids[users[0]].item(), k=5)
    shown = page.text_content(f"#history > li[data-item='{hostile_id}'] .title")
    assert shown == HOSTILE
    assert page.evaluate("document.querySelectorAll('main script, main img').length") == 0
    # and typed into the history search
    page.click("#tab-history")
    page.fill("#item-search", "<script>")
    page.click("#item-form button[type=submit]")
    page.wait_for_selector(f"#picked li[data-item='{hostile_id}']")
    assert page.text_content(f"#picked li[data-item='{hostile_id}'] span") == HOSTILE
    assert page.evaluate("window.__pwned") is None


def test_error_states(page: Any, browser: Any, tmp_path: Path) -> None:
    open_page(page)
    show_user(page, "no-such-user")
    assert "Unknown user" in page.text_content("#user-message")
    assert "no-such-user" in page.text_content("#user-message")
    assert page.evaluate("document.querySelector('#user-message').classList.contains('error')")
    page.click("#tab-history")
    page.click("#fold-in")
    assert "Add at least one item" in page.text_content("#history-message")
    # a model without explanations: the page says so where the explanation would be
    publish(NoExtras().fit(tiny_interactions()), tmp_path, version="v1")
    with ThreadServer(tmp_path) as other:
        pg = browser.new_page()
        pg.goto(other.url + "/explore")
        pg.wait_for_selector("#model-version")
        assert "no explanations" in pg.text_content("#model")
        show_user(pg, 1, k=5)
        pg.click("#recs > li:nth-child(1) .main")
        pg.wait_for_selector("#recs > li:nth-child(1) .explain .error")
        assert "cannot explain its scores" in pg.text_content("#recs > li:nth-child(1) .explain")
        pg.close()


def test_random_user(page: Any, model: Any) -> None:
    open_page(page)
    shown = []
    for _ in range(3):
        page.evaluate(CLICK_AND_WAIT, ["#random", "user"])  # resolves when the page has shown the drawn user
        user = int(page.input_value("#user"))
        assert page.text_content("#user-message").startswith(f"User {user}:")
        assert ids_of(page, "#recs > li") == model.recommend_one(user, 10)[0].tolist()
        shown.append(user)
    assert set(shown) <= set(model.users_.ids.tolist())


def test_keyboard_navigation(page: Any, model: Any) -> None:
    open_page(page)
    page.focus("#user")
    page.keyboard.type(str(model.users_.ids[5].item()))
    page.keyboard.press("Enter")
    page.wait_for_selector("#recs > li")
    page.focus("#recs > li:nth-child(1) .main")
    page.keyboard.press("Enter")  # a button: Enter opens the explanation
    page.wait_for_selector("#recs > li:nth-child(1) .explain table")
    page.focus("#tab-user")
    page.keyboard.press("ArrowRight")
    assert page.evaluate("document.activeElement.id") == "tab-history"
    assert page.is_visible("#view-history") and not page.is_visible("#view-user")


# -- history mode and comparison ----------------------------------------------------------------------------


def test_history_mode(page: Any, model: Any) -> None:
    items = [model.items_.ids[i].item() for i in (10, 20, 30)]
    open_page(page)
    page.click("#tab-history")
    for item in items:
        page.fill("#item-search", str(item))
        page.click("#item-form button[type=submit]")
        page.wait_for_selector(f"#picked li[data-item='{item}']")
    page.select_option("#history-k", "10")
    page.click("#fold-in")
    page.wait_for_selector("#history-recs > li")
    want = model.recommend_history(items, 10)[0]
    assert ids_of(page, "#history-recs > li") == want.tolist()
    page.click("#history-recs > li:nth-child(1) .main")
    rows = explanation_rows(page, "#history-recs > li:nth-child(1)")
    frame = model.explain_history(items, want[0].item(), top=5)
    np.testing.assert_allclose([r[2] for r in rows], frame["contribution"].to_numpy(), rtol=1e-12)


def test_compare_two_versions(page: Any, model: Any, root: Path) -> None:
    user = model.users_.ids[7].item()
    old = load_model(root / "versions" / "v1")
    open_page(page)
    page.click("#tab-compare")
    page.fill("#compare-user", str(user))
    page.select_option("#version-a", "v1")
    page.select_option("#version-b", "v2")
    page.click("#compare-form button[type=submit]")
    page.wait_for_selector("#compare-b > li")
    a, b = old.recommend_one(user, 10)[0].tolist(), model.recommend_one(user, 10)[0].tolist()
    assert ids_of(page, "#compare-a > li") == a and ids_of(page, "#compare-b > li") == b
    both = [i for i in a if i in set(b)]
    assert ids_of(page, "#compare-a > li.overlap") == both
    assert ids_of(page, "#compare-b > li.overlap") == [i for i in b if i in set(a)]
    assert f"{len(both)} of 10" in page.text_content("#compare-message")


@pytest.mark.parametrize("size", sorted(SIZES))
def test_no_horizontal_overflow(page: Any, model: Any, size: str) -> None:
    page.set_viewport_size(dict(zip(("width", "height"), SIZES[size])))
    users = model.history_times_[:, 0].nonzero()[0]  # a user with the long hostile title in the history
    open_page(page)
    show_user(page, model.users_.ids[users[0]].item(), k=20)
    page.click("#recs > li:nth-child(1) .main")
    page.wait_for_selector("#recs .explain table")
    assert no_horizontal_overflow(page)
    page.click("#tab-history")
    page.fill("#item-search", "<script>")
    page.click("#item-form button[type=submit]")
    page.wait_for_selector("#picked li[data-item]")
    page.click("#fold-in")
    page.wait_for_selector("#history-recs > li")
    assert no_horizontal_overflow(page)
    page.click("#tab-compare")
    page.fill("#compare-user", str(model.users_.ids[users[0]].item()))
    page.select_option("#version-a", "v1")
    page.click("#compare-form button[type=submit]")
    page.wait_for_selector("#compare-b > li")
    assert no_horizontal_overflow(page)


def test_a_published_version_shows_after_reload(page: Any, server: ThreadServer, root: Path) -> None:
    open_page(page)
    assert page.text_content("#model-version") == "v2"
    publish(root / "versions" / "v1", root, version="v3")  # a copy of v1's artifact, published as new
    try:
        deadline = time.monotonic() + 20
        while server.store.current.version != "v3":
            assert time.monotonic() < deadline, "the service did not pick up v3"
            time.sleep(0.05)
        page.reload()
        page.wait_for_selector("#model-version")
        assert page.text_content("#model-version") == "v3"
        assert "v3 (current)" in page.text_content("#version-b")
    finally:
        activate(root, "v2")
        deadline = time.monotonic() + 20
        while server.store.current.version != "v2" and time.monotonic() < deadline:
            time.sleep(0.05)


def test_real_ml100k(browser: Any, ml100k_dir: str, tmp_path: Path) -> None:
    from recsys.datasets import load_movielens
    from recsys.models import ItemKNN
    from recsys.serving import keep_explorer_data

    data = load_movielens("ml-100k", data_dir=ml100k_dir).interactions()
    model = keep_explorer_data(ItemKNN().fit(data), data)
    publish(model, tmp_path, version="ml100k")
    with ThreadServer(tmp_path) as srv:
        pg = browser.new_page()
        pg.goto(srv.url + "/explore")
        pg.wait_for_selector("#model-version")
        show_user(pg, 1, k=10)
        want, _ = model.recommend_one(1, 10)
        assert ids_of(pg, "#recs > li") == want.tolist()
        titles = data.item_features["title"].tolist()
        assert pg.text_content("#recs > li:nth-child(1) .title") == titles[data.items.index_of(want[0].item())]
        pg.click("#recs > li:nth-child(1) .main")
        rows = explanation_rows(pg, "#recs > li:nth-child(1)")
        np.testing.assert_allclose([r[2] for r in rows], model.explain(1, want[0].item(), top=5)["contribution"].to_numpy(), rtol=1e-12)
        pg.close()


def test_a_rejected_version_is_announced(page: Any, server: ThreadServer, root: Path) -> None:
    # a version whose files were tampered with after publishing: the service keeps v2 and the page says so
    bad = root / "versions" / "v9"
    shutil.copytree(root / "versions" / "v2", bad)
    victim = next((bad / "arrays").iterdir())
    victim.write_bytes(victim.read_bytes()[:-8])
    try:
        activate(root, "v9")
        deadline = time.monotonic() + 20
        while server.store.last_error is None:
            assert time.monotonic() < deadline, "the service did not reject v9"
            time.sleep(0.05)
        open_page(page)
        assert page.text_content("#model-version") == "v2"
        assert page.is_visible("#banner")
        assert "v9 was rejected" in page.text_content("#banner") and "still serving v2" in page.text_content("#banner")
    finally:
        activate(root, "v2")
        shutil.rmtree(bad, ignore_errors=True)
        deadline = time.monotonic() + 20
        while server.store.last_error is not None and time.monotonic() < deadline:
            time.sleep(0.05)
