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

import contextlib
import functools
import inspect
import json
import tempfile
import unittest
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from recsys.data import Interactions
from recsys.errors import ArtifactError, DataError, NotFittedError, NotSupportedError, UnknownIdError
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
        err = _raises(call, NotFittedError, f"{type(model).__name__} did not raise NotFittedError before fit")
        assert type(model).__name__ in str(err), "NotFittedError should name the model"


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
        _raises(lambda: type(model).load(path), ArtifactError, "a tampered artifact must be refused")


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


def check_predict(case: ContractCase) -> None:
    """``predict`` of (user, item) pairs, for models that have it.

    One float32 value per pair, each pair independent of the others (reversed
    order and one pair alone give the same values), equal to the model's own
    :meth:`~recsys.models.Recommender.score` clipped to the training rating
    range (``rating_range_``) where the model has one; unequal lengths are a
    ``DataError``; an unknown user or item raises ``UnknownIdError`` naming it,
    or, for models with ``predicts_unknown_ids``, gets a finite value. A model
    without ``predict`` (or one whose fitted configuration refuses it with
    ``NotSupportedError`` naming the model) is skipped with the reason.
    """
    model, data = _fitted(case)
    name = type(model).__name__
    if not hasattr(model, "predict"):
        raise unittest.SkipTest(f"{name} has no predict() (it does not implement _predict_pairs)")
    users = np.repeat(data.users.ids[:3], 6)
    items = np.tile(data.items.ids[:6], 3)
    try:
        p = model.predict(users, items)
    except NotSupportedError as e:
        assert name in str(e), "NotSupportedError should name the model"
        raise unittest.SkipTest(f"{name} cannot predict in this configuration: {e}") from None
    assert isinstance(p, np.ndarray) and p.dtype == np.float32 and p.shape == (len(users),), (
        f"predict must return one float32 per pair; got {getattr(p, 'dtype', type(p))} {getattr(p, 'shape', '')}"
    )
    assert np.isfinite(p).all(), "predictions must be finite"
    np.testing.assert_allclose(model.predict(users[::-1], items[::-1]), p[::-1], rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(model.predict(users[4:5], items[4:5]), p[4:5], rtol=1e-6, atol=1e-6)
    lo, hi = getattr(model, "rating_range_", (-np.inf, np.inf))
    np.testing.assert_allclose(p, np.clip(model.score(users, items), lo, hi), rtol=1e-5, atol=1e-5)
    _raises(lambda: model.predict(users, items[:-1]), DataError, "predict with unequal lengths must raise DataError")
    for u, i, unknown in ((["no-such-user"], items[:1], "no-such-user"), (users[:1], ["no-such-item"], "no-such-item")):
        if type(model).predicts_unknown_ids:
            q = model.predict(u, i)
            assert q.shape == (1,) and np.isfinite(q).all(), f"predict of {unknown!r} must be a finite value"
        else:
            err = _raises(functools.partial(model.predict, u, i), UnknownIdError, f"predict of {unknown!r} must raise UnknownIdError")
            assert unknown in str(err), "UnknownIdError should name the unknown id"


def check_explain(case: ContractCase) -> None:
    """``explain`` / ``explain_history``, for models that explain their scores.

    The frame starts with the columns ``kind, id, contribution``, lists at most
    ``top`` sources plus one ``rest`` row for the others, and, when ``attrs["exact"]``,
    its contributions sum to the score that :meth:`~recsys.models.Recommender.score`
    reports (an independent path) and that ``attrs["score"]`` holds, to 1e-5.
    Folded-in histories likewise against ``recommend_history``'s scores. A model
    that cannot explain must raise ``NotSupportedError`` naming it; the check
    is then skipped with the reason.
    """
    model, data = _fitted(case)
    name = type(model).__name__
    for u in data.users.ids[:3]:
        ids, _ = model.recommend_one(u, k=3)
        for item in ids:
            try:
                frame = model.explain(u, item, top=2)
            except NotSupportedError as e:
                assert name in str(e), "NotSupportedError should name the model"
                raise unittest.SkipTest(f"{name} does not explain its scores: {e}") from None
            assert list(frame.columns[:3]) == ["kind", "id", "contribution"], list(frame.columns)
            assert frame.attrs["model"] == name
            n_sources = frame.attrs["n_sources"]
            listed = frame["kind"].isin(["item", "user", "attention"])
            assert listed.sum() == min(2, n_sources) and frame.loc[listed, "id"].notna().all()
            assert (frame["kind"] == "rest").sum() == int(n_sources > 2), "the sources beyond top make one rest row"
            score = float(model.score([u], [item])[0])
            if frame.attrs["exact"]:
                np.testing.assert_allclose(frame["contribution"].sum(), score, rtol=1e-5, atol=1e-5, err_msg=f"{name}: parts of ({u!r}, {item!r})")
            np.testing.assert_allclose(frame.attrs["score"], score, rtol=1e-5, atol=1e-5)
    frame_all = data.to_frame()
    u = data.users.ids[0]
    mine = frame_all[frame_all["user"] == u]
    kw: dict[str, Any] = {
        "ratings": mine["rating"].to_numpy() if "rating" in mine else None,
        "timestamps": mine["timestamp"].to_numpy() if "timestamp" in mine else None,
    }
    try:
        ids, scores = model.recommend_history(mine["item"].to_numpy(), k=3, **kw)
    except NotSupportedError:
        return  # no fold-in: nothing to explain
    for item, score in zip(ids, scores):
        frame = model.explain_history(mine["item"].to_numpy(), item, top=2, **kw)
        if frame.attrs["exact"]:
            np.testing.assert_allclose(frame["contribution"].sum(), float(score), rtol=1e-5, atol=1e-5, err_msg=f"{name}: parts of a folded-in history")


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
        check_predict,
        check_explain,
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
    >>> skipped = check_recommender(ContractCase(Popular, learns_preferences=False, fold_in_reproduces_fit=True))
    >>> for check, reason in skipped.items():
    ...     print(f"{check}: {reason}")
    check_predict: Popular has no predict() (it does not implement _predict_pairs)
    check_learns_preferences: Popular is not expected to learn preferences (its case sets learns_preferences=False)
    """
    skipped: dict[str, str] = {}
    for name, check in CHECKS.items():
        try:
            check(case)
        except unittest.SkipTest as e:
            skipped[name] = str(e)
    return skipped


# -- a failed fit changes nothing ---------------------------------------------------------------


class _Injected(RuntimeError):
    """The failure the contract check injects into a fit."""


class _FailingData(Interactions):
    """Interactions whose ``matrix`` raises at its ``fail_at``-th call (bad input found mid-fit)."""

    calls: int
    fail_at: int

    def matrix(self, *args: Any, **kwargs: Any) -> Any:
        self.__dict__["calls"] += 1
        if self.calls == self.fail_at:
            raise _Injected(f"injected: matrix() call {self.calls} fails")
        return super().matrix(*args, **kwargs)


def _failing_data(data: Interactions, fail_at: int) -> _FailingData:
    out = _FailingData.__new__(_FailingData)
    out.__dict__.update(data.__dict__)
    out.__dict__.update(calls=0, fail_at=fail_at, _matrices=dict(data.__dict__["_matrices"]))
    return out


def _hook_names(model: Recommender) -> list[str]:
    """The model's private methods: where a fit's work happens."""
    names = []
    for name in dir(type(model)):
        if name.startswith("_") and not name.startswith("__"):
            if inspect.isfunction(inspect.getattr_static(type(model), name)):
                names.append(name)
    return names


@contextlib.contextmanager
def _hooks(model: Recommender, fail_at: int | None, exc: type[BaseException]) -> Iterator[list[str]]:
    """Count the calls of every private method of ``model`` (instance-level wrappers); the
    ``fail_at``-th call raises ``exc`` before doing anything."""
    calls: list[str] = []

    def wrap(name: str, bound: Callable[..., Any]) -> Callable[..., Any]:
        def hook(*args: Any, **kwargs: Any) -> Any:
            calls.append(name)
            if fail_at is not None and len(calls) == fail_at:
                raise exc(f"injected into {name} (call {fail_at})")
            return bound(*args, **kwargs)

        return hook

    names = _hook_names(model)
    for name in names:
        setattr(model, name, wrap(name, getattr(model, name)))
    try:
        yield calls
    finally:
        for name in names:
            model.__dict__.pop(name, None)


def _answers(model: Recommender, data: Interactions) -> dict[str, Any]:
    """What a user of the model can observe: ids, recommendations, pair scores, a fold-in."""
    if not model.is_fitted:
        return {"fitted": False, "attributes": sorted(vars(model))}
    recs = model.recommend(data.users.ids, k=5)
    out: dict[str, Any] = {
        "fitted": True,
        "users": model.users_.ids.tolist(),
        "items": model.items_.ids.tolist(),
        "recs": recs,
        "scores": model.score(recs["user"].to_numpy(), recs["item"].to_numpy()),
        "learned": sorted(model._learned_state()),
    }
    csr = data.matrix()
    hist = data.items.ids[csr.indices[csr.indptr[0] : csr.indptr[1]]]
    ratings = None if data.ratings is None else data.matrix("csr", "rating")[0].data
    try:
        out["fold_in"] = model.recommend_history(hist, k=5, ratings=ratings)
    except NotSupportedError:
        out["fold_in"] = None
    return out


def _assert_same(before: dict[str, Any], after: dict[str, Any], what: str) -> None:
    assert before.keys() == after.keys(), f"{what}: the model's state changed (fitted {before['fitted']} -> {after['fitted']})"
    for key, a in before.items():
        b = after[key]
        if isinstance(a, pd.DataFrame):
            pd.testing.assert_frame_equal(a, b, obj=f"{what}: recommendations")
        elif isinstance(a, tuple):
            for x, y in zip(a, b):
                np.testing.assert_array_equal(x, y, err_msg=f"{what}: {key}")
        elif isinstance(a, np.ndarray):
            np.testing.assert_array_equal(a, b, err_msg=f"{what}: {key}")
        else:
            assert a == b, f"{what}: {key} changed from {a!r:.200} to {b!r:.200}"


def _other_data(data: Interactions) -> Interactions:
    """Different training data (every other row, new ids for a few users and items) whose fit
    would give a different model: a failure after its work is visible if not undone."""
    f = data.to_frame().iloc[::2].reset_index(drop=True)
    for col in ("user", "item"):
        f[col] = f[col].astype(object)
    f.loc[: len(f) // 4, "user"] = [f"other-{u}" for u in f.loc[: len(f) // 4, "user"]]
    f.loc[: len(f) // 4, "item"] = [f"other-{i}" for i in f.loc[: len(f) // 4, "item"]]
    kw: dict[str, Any] = {}
    for col, ids, feats in (("user", data.users.ids, data.user_features), ("item", data.items.ids, data.item_features)):
        if feats is not None:  # the renamed ids keep their features
            feats = feats.assign(**{col: ids})
            renamed = feats.assign(**{col: [f"other-{x}" for x in ids]})
            kw[f"{col}_features"] = pd.concat([feats, renamed], ignore_index=True)
    if "rating" in f:
        kw["rating_col"] = "rating"
    if "timestamp" in f:
        kw["timestamp_col"] = "timestamp"
    if "weight" in f:
        kw["weight_col"] = "weight"
    return Interactions.from_frame(f, **kw)


def _partial_data(model: Recommender, data: Interactions, method: str) -> Interactions | None:
    """Valid new data for ``partial_fit_users`` (a new user of known items) or
    ``partial_fit_items`` (a new item of known users); None for other methods."""
    users, items = data.users.ids[:3].tolist(), data.items.ids[:3].tolist()
    if method == "partial_fit_users":
        u, i = ["contract-new-user"] * 3 + users[:1], items + items[:1]
    elif method == "partial_fit_items":
        u, i = users + users[:1], ["contract-new-item"] * 3 + items[1:2]
    else:
        return None
    n = len(u)
    frame = pd.DataFrame({"user": u, "item": i, "rating": [5.0, 4.0, 5.0, 3.0][:n], "timestamp": [2_000_000 + j for j in range(n)]})
    return Interactions.from_frame(frame, rating_col="rating", timestamp_col="timestamp")


def _fail_points(n_calls: int) -> list[int]:
    return sorted({1, max(1, n_calls // 2), n_calls})


def check_failed_fit_changes_nothing(case: ContractCase) -> None:
    """A ``fit`` (or ``partial_fit_*``) that raises leaves the model exactly as it was.

    Failures are injected at the first, middle and last private-method call of
    the operation (the last one a ``KeyboardInterrupt``), and as input that
    fails when read mid-fit (the data's first and last ``matrix()`` call).
    Afterwards the recommendations, pair scores, fold-in and a save/load round
    trip equal those before the call; a model that was unfitted is still
    unfitted (``recommend`` raises :class:`NotFittedError`).
    """
    data = case.data()
    other = _other_data(data)
    name = type(case.factory()).__name__

    model = case.factory().fit(data)
    before = _answers(model, data)
    # how many hook and matrix() calls a good refit on the other data makes (from the same state,
    # caches included); its answers must differ, so that a failure not undone would show
    probe = case.factory().fit(data)
    _answers(probe, data)
    counting = _failing_data(other, fail_at=-1)
    with _hooks(probe, None, _Injected) as calls:
        probe.fit(counting)
    n_hooks, n_matrix = len(calls), counting.calls
    assert n_hooks > 0, f"{name}.fit calls none of its private methods"
    assert probe.users_.ids.tolist() != before["users"], "the other data must give a visibly different model"
    failures: list[tuple[str, Callable[[], Any], type[BaseException]]] = []
    for at in _fail_points(n_hooks):
        exc: type[BaseException] = KeyboardInterrupt if at == n_hooks else _Injected
        failures.append((f"{exc.__name__} at private call {at} of {n_hooks}", functools.partial(_hooked, model, at, exc, functools.partial(model.fit, other)), exc))
    for at in _fail_points(n_matrix) if n_matrix else []:
        failures.append((f"data failing at matrix() call {at} of {n_matrix}", functools.partial(_fit_failing, model, other, at), _Injected))
    for what, call, exc in failures:
        _raises(call, exc, f"{name}.fit did not raise with {what}")
        _assert_same(before, _answers(model, data), f"{name}.fit failing with {what}")
    with tempfile.TemporaryDirectory() as tmp:
        loaded = type(model).load(model.save(Path(tmp) / "model"))
        _assert_same(before, _answers(loaded, data), f"{name} saved and loaded after failed fits")
    # no hidden state (a random generator, a trainer) moved on: a refit gives the same model
    again = _answers(case.factory().fit(data), data)["recs"]
    refit = _answers(model.fit(data), data)["recs"]
    assert refit["item"].tolist() == again["item"].tolist(), f"{name}: a fit after failed fits differs from a fresh fit"
    np.testing.assert_allclose(refit["score"].to_numpy(), again["score"].to_numpy(), rtol=1e-5, atol=1e-6)

    # from unfitted: still unfitted
    fresh = case.factory()
    unfitted = _answers(fresh, data)
    for what, call in (
        ("KeyboardInterrupt at the last private call", lambda: _hooked(fresh, n_hooks, KeyboardInterrupt, lambda: fresh.fit(other))),
        ("data failing at its first matrix() call", lambda: fresh.fit(_failing_data(other, 1))),
    ):
        _raises(call, (KeyboardInterrupt, _Injected), f"{name}.fit did not raise with {what}")
        _assert_same(unfitted, _answers(fresh, data), f"unfitted {name}.fit failing with {what}")
        _raises(
            lambda: fresh.recommend([data.users.ids[0]]),
            NotFittedError,
            f"{name} answers after a failed first fit ({what}); it must stay unfitted",
        )

    # online updates
    for method in sorted(m for m in dir(model) if m.startswith("partial_fit") and callable(getattr(model, m, None))):
        new = _partial_data(model, data, method)
        if new is None:
            continue
        probe = case.factory().fit(data)
        _answers(probe, data)
        with _hooks(probe, None, _Injected) as calls:
            getattr(probe, method)(new)
        n = len(calls)
        changed = _answers(probe, data)
        assert changed["users"] != before["users"] or changed["items"] != before["items"], f"{method} changed no id"
        for at in _fail_points(n) if n else []:
            exc = KeyboardInterrupt if at == n else _Injected
            _raises(
                functools.partial(_hooked, model, at, exc, functools.partial(getattr(model, method), new)),
                exc,
                f"{name}.{method} did not raise with {exc.__name__} at private call {at} of {n}",
            )
            _assert_same(before, _answers(model, data), f"{name}.{method} failing at private call {at} of {n}")
        with tempfile.TemporaryDirectory() as tmp:
            loaded = type(model).load(model.save(Path(tmp) / "model"))
            _assert_same(before, _answers(loaded, data), f"{name} saved and loaded after a failed {method}")


def _raises(
    call: Callable[[], Any], exc: type[BaseException] | tuple[type[BaseException], ...], message: str
) -> BaseException:
    """The ``exc`` that ``call()`` raises; ``AssertionError(message)`` when it returns."""
    try:
        call()
    except exc as e:
        return e
    raise AssertionError(message)


def _fit_failing(model: Recommender, data: Interactions, fail_at: int) -> Any:
    return model.fit(_failing_data(data, fail_at))


def _hooked(model: Recommender, fail_at: int, exc: type[BaseException], call: Callable[[], Any]) -> Any:
    with _hooks(model, fail_at, exc):
        return call()


CHECKS[check_failed_fit_changes_nothing.__name__] = check_failed_fit_changes_nothing
