"""The contract every recommender passes, runnable on third-party models too.

Each ``check_*`` function takes a :class:`ContractCase` and raises
``AssertionError`` when the model breaks the contract, or
``unittest.SkipTest`` (reported as skipped by pytest and unittest) with the
reason when the check does not apply to the model (no fold-in, no
preferences to learn). Rankings are compared up to float ties
(:mod:`recsys.testing.ranking`). ``check_recommender`` runs them all; the project's own tests run each check for every model in
:data:`CONTRACT_CASES`, and a test asserts that every model exported from
:mod:`recsys.models` has a case there.
"""

from __future__ import annotations

import json
import tempfile
import unittest
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from recsys.data import Interactions
from recsys.errors import ArtifactError, NotFittedError, NotSupportedError, UnknownIdError
from recsys.models.base import Recommender
from recsys.testing._data import tiny_interactions
from recsys.testing.ranking import assert_rankings_equal, assert_recommendations_equal


@dataclass(frozen=True)
class ContractCase:
    """How to build a small, fast, single-threaded instance of a model for the contract checks.

    Parameters
    ----------
    factory : callable
        Returns a new unfitted model (seeded; small hyper-parameters).
    learns_preferences : bool
        The model should rank each checkerboard user's own group first.
    data : callable
        Returns the training data (default: :func:`tiny_interactions`).
    fold_in_reproduces_fit : bool
        Folding in a training user's own history (with its ratings and
        timestamps) gives that user's fitted scores, within float error. True
        where the user's scores are a function of their history alone (item
        neighbourhoods, EASE, content profiles, popularity); False where the
        fitted user state comes from training (matrix factorisation, SGD) or a
        new user differs from a known one (UserKNN: a training user is its own
        neighbour).
    """

    factory: Callable[[], Recommender]
    learns_preferences: bool = True
    data: Callable[[], Interactions] = tiny_interactions
    fold_in_reproduces_fit: bool = False


def _fitted(case: ContractCase) -> tuple[Recommender, Interactions]:
    data = case.data()
    return case.factory().fit(data), data


def _seen(data: Interactions) -> set[tuple[object, object]]:
    f = data.to_frame()
    return set(zip(f["user"].tolist(), f["item"].tolist()))


def check_unfitted_raises(case: ContractCase) -> None:
    model = case.factory()
    for call in (
        lambda: model.recommend([0]),
        lambda: model.recommend_one(0),
        lambda: model.score([0], [0]),
        lambda: model.save(tempfile.mkdtemp() + "/m"),
    ):
        try:
            call()
        except NotFittedError as e:
            assert type(model).__name__ in str(e), "NotFittedError should name the model"
        else:
            raise AssertionError(f"{type(model).__name__} did not raise NotFittedError before fit")


def check_recommend_frame(case: ContractCase) -> None:
    model, data = _fitted(case)
    users = data.users.ids
    recs = model.recommend(users, k=5)
    assert list(recs.columns) == ["user", "item", "score", "rank"]
    assert set(recs["user"]) <= set(users)
    for _, g in recs.groupby("user", sort=False):
        assert len(g) <= 5
        assert g["rank"].tolist() == list(range(1, len(g) + 1)), "ranks must be 1..n"
        assert np.all(np.diff(g["score"].to_numpy()) <= 0), "scores must be non-increasing"
        assert g["item"].is_unique


def check_batch_equals_single(case: ContractCase) -> None:
    model, data = _fitted(case)
    users = data.users.ids
    recs = model.recommend(users, k=7)
    for u in users:
        ids, scores = model.recommend_one(u, k=7)
        g = recs[recs["user"] == u]
        assert_rankings_equal(
            g["item"].to_numpy(), g["score"].to_numpy(), ids, scores, rtol=1e-6, atol=1e-6, err_msg=f"batch and single, user {u!r}"
        )


def check_exclusions(case: ContractCase) -> None:
    model, data = _fitted(case)
    seen = _seen(data)
    recs = model.recommend(data.users.ids, k=data.n_items)
    pairs = set(zip(recs["user"].tolist(), recs["item"].tolist()))
    assert not (pairs & seen), "seen items must never be recommended"
    if not model.scores_cold_items:
        cold = set(data.items.ids[data.item_counts == 0].tolist())
        assert not (set(recs["item"]) & cold), "items without train interactions must not be recommended"
    blocked = data.items.ids[:5]
    r2 = model.recommend(data.users.ids, k=10, exclude_items=blocked)
    assert not set(r2["item"]) & set(blocked.tolist())
    allowed = data.items.ids[::3]
    r3 = model.recommend(data.users.ids, k=10, items=allowed, exclude_seen=False)
    assert set(r3["item"]) <= set(allowed.tolist())
    # restricting candidates keeps each candidate's score
    full = model.recommend(data.users.ids[:3], k=data.n_items, exclude_seen=False)
    for u in data.users.ids[:3]:
        a = full[(full["user"] == u) & full["item"].isin(allowed)]
        b = r3[r3["user"] == u]
        top = a.head(len(b))
        np.testing.assert_allclose(np.sort(top["score"].to_numpy()), np.sort(b["score"].to_numpy()), rtol=1e-5, atol=1e-6)


def check_score_matches_recommend(case: ContractCase) -> None:
    model, data = _fitted(case)
    recs = model.recommend(data.users.ids[:5], k=5)
    s = model.score(recs["user"].to_numpy(), recs["item"].to_numpy())
    np.testing.assert_allclose(s, recs["score"].to_numpy(), rtol=1e-5, atol=1e-5)


def check_unknown_users(case: ContractCase) -> None:
    model, data = _fitted(case)
    known = data.users.ids[0]
    try:
        model.recommend([known, "no-such-user"])
    except UnknownIdError as e:
        assert "no-such-user" in str(e)
    else:
        raise AssertionError("an unknown user must raise UnknownIdError by default")
    skipped = model.recommend([known, "no-such-user"], on_unknown="skip")
    assert set(skipped["user"]) == {known}
    pop = model.recommend(["no-such-user"], k=3, on_unknown="popular")
    counts = pd.Series(data.item_counts, index=data.items.ids)
    assert len(pop) == 3 and pop["item"].tolist() == counts.sort_values(ascending=False, kind="stable").index[:3].tolist()
    ids, _ = model.recommend_one("no-such-user", on_unknown="skip")
    assert len(ids) == 0


def check_params_round_trip(case: ContractCase) -> None:
    model = case.factory()
    params = model.get_params()
    again = type(model)(**json.loads(json.dumps(model.get_config()["params"])))
    assert json.dumps(again.get_config(), sort_keys=True) == json.dumps(model.get_config(), sort_keys=True)
    rebuilt = Recommender.from_config(json.loads(json.dumps(model.get_config())))
    assert type(rebuilt) is type(model)
    assert model.set_params(**params) is model


def check_refit_equals_fresh_fit(case: ContractCase) -> None:
    data = case.data()
    a = case.factory().fit(data)
    a.fit(data)
    b = case.factory().fit(data)
    ra, rb = a.recommend(data.users.ids, k=5), b.recommend(data.users.ids, k=5)
    assert_recommendations_equal(ra, rb)  # a second fit must equal a fresh fit


def check_save_load(case: ContractCase) -> None:
    model, data = _fitted(case)
    with tempfile.TemporaryDirectory() as tmp:
        path = model.save(Path(tmp) / "model")
        loaded = type(model).load(path)
        ra = model.recommend(data.users.ids, k=5)
        rb = loaded.recommend(data.users.ids, k=5)
        assert list(ra.columns) == list(rb.columns) and ra.dtypes.tolist() == rb.dtypes.tolist()
        assert_recommendations_equal(rb, ra, rtol=1e-6, atol=1e-7)
        assert loaded.get_config() == model.get_config()
        # flip one byte of one array file: loading must refuse it
        victim = sorted((path / "arrays").glob("*.npy"))[-1]
        raw = bytearray(victim.read_bytes())
        raw[-1] ^= 0xFF
        victim.write_bytes(bytes(raw))
        try:
            type(model).load(path)
        except ArtifactError:
            pass
        else:
            raise AssertionError("a tampered artifact must be refused")


def check_fold_in(case: ContractCase) -> None:
    """Fold-in (``recommend_history``) of a training user's history.

    Every model that supports it: at most ``k`` items, none from the history,
    sorted, the same answer twice, and restricting ``candidates`` keeps each
    candidate's score and relative order. With ``case.fold_in_reproduces_fit``
    the scores equal the user's fitted ones (``recommend_one``) up to float
    error. A model without fold-in must say so with ``NotSupportedError``
    naming it; the check is then skipped.
    """
    model, data = _fitted(case)
    name = type(model).__name__
    frame = data.to_frame()
    u = data.users.ids[0]
    mine = frame[frame["user"] == u]
    hist = mine["item"].to_numpy()
    kw: dict[str, Any] = {
        "ratings": mine["rating"].to_numpy() if "rating" in mine else None,
        "timestamps": mine["timestamp"].to_numpy() if "timestamp" in mine else None,
    }
    try:
        ids, scores = model.recommend_history(hist, k=5, **kw)
    except NotSupportedError as e:
        assert name in str(e), "NotSupportedError should name the model"
        raise unittest.SkipTest(f"{name} does not recommend from a history: {e}") from None
    assert len(ids) <= 5 and not set(ids.tolist()) & set(hist.tolist())
    assert np.all(np.diff(scores) <= 0)
    n = data.n_items
    full_ids, full_scores = model.recommend_history(hist, k=n, **kw)
    again = model.recommend_history(hist, k=n, **kw)
    assert_rankings_equal(again[0], again[1], full_ids, full_scores, truncated=False, err_msg="fold-in twice")
    assert_rankings_equal(ids, scores, full_ids[:5], full_scores[:5], err_msg="top 5 of the full fold-in")
    chosen = full_ids[::2]
    sub_ids, sub_scores = model.recommend_history(hist, k=n, candidates=chosen, **kw)
    assert_rankings_equal(sub_ids, sub_scores, chosen, full_scores[::2], truncated=False, err_msg="fold-in on candidates")
    if case.fold_in_reproduces_fit:
        fit_ids, fit_scores = model.recommend_one(u, k=n)
        assert_rankings_equal(full_ids, full_scores, fit_ids, fit_scores, truncated=False, err_msg=f"fold-in of user {u!r}'s history")


def check_learns_preferences(case: ContractCase) -> None:
    if not case.learns_preferences:
        name = type(case.factory()).__name__
        raise unittest.SkipTest(f"{name} is not expected to learn preferences (its case sets learns_preferences=False)")
    model, data = _fitted(case)
    recs = model.recommend(data.users.ids, k=1)
    same = [(int(u) % 2) == (int(i) % 2) for u, i in zip(recs["user"], recs["item"]) if int(i) < 1000]
    assert np.mean(same) >= 0.8, f"top-1 should be in the user's own group for most users; got {np.mean(same):.2f}"


CHECKS: dict[str, Callable[[ContractCase], None]] = {
    f.__name__: f
    for f in (
        check_unfitted_raises,
        check_recommend_frame,
        check_batch_equals_single,
        check_exclusions,
        check_score_matches_recommend,
        check_unknown_users,
        check_params_round_trip,
        check_refit_equals_fresh_fit,
        check_save_load,
        check_fold_in,
        check_learns_preferences,
    )
}


def check_recommender(case: ContractCase) -> dict[str, str]:
    """Run every contract check on a model.

    Returns
    -------
    dict
        The checks that did not apply (skipped), with the reason.

    Examples
    --------
    >>> from recsys.models import Popular
    >>> check_recommender(ContractCase(Popular, learns_preferences=False, fold_in_reproduces_fit=True))
    {'check_learns_preferences': 'Popular is not expected to learn preferences (its case sets learns_preferences=False)'}
    """
    skipped: dict[str, str] = {}
    for name, check in CHECKS.items():
        try:
            check(case)
        except unittest.SkipTest as e:
            skipped[name] = str(e)
    return skipped
