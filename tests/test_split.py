"""Tests of recsys.split: hand-worked cases, reference implementations, error paths."""

from __future__ import annotations

import os
import warnings

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from recsys.data import Interactions
from recsys.errors import DataError, DataTypeError, ParameterError
from recsys.split import (
    SplitReport,
    _order_by_group_then_draw,
    k_fold,
    leave_last_n,
    split_report,
    stratified_split,
    temporal_split,
    train_validation_split,
)

# -- helpers ----------------------------------------------------------------------------


def marked(users, items, timestamps=None, **kw) -> Interactions:
    """Interactions whose rating is the row number, so rows can be traced through a split."""
    n = len(users)
    return Interactions.from_arrays(users, items, ratings=np.arange(n), timestamps=timestamps, **kw)


def rows(part: Interactions) -> list[int]:
    assert part.ratings is not None
    return part.ratings.astype(int).tolist()


def random_data(seed: int, n_users: int = 12, n_items: int = 40, n: int = 200, timestamps: bool = True):
    rng = np.random.default_rng(seed)
    keys = rng.choice(n_users * n_items, size=min(n, n_users * n_items), replace=False)
    users, items = keys // n_items, keys % n_items
    ts = rng.integers(0, 20, size=len(keys)) if timestamps else None  # few distinct values: many ties
    return marked(users * 10 + 3, items * 7 + 1, ts)


def reference_stratified(df: pd.DataFrame, ratio: float, seed: int, col: str) -> set[int]:
    """Plain pandas version of MS Recommenders' python_stratified_split (train row positions)."""
    df = df.copy()
    df["pos"] = np.arange(len(df))
    df["random"] = np.random.RandomState(seed).rand(len(df))
    df = df.sort_values([col, "random"], kind="stable")
    g = df.groupby(col)
    rank = g.cumcount() + 1
    count = g[col].transform("count")
    return set(df.loc[rank <= np.round(ratio * count), "pos"].tolist())


def check_partition(data: Interactions, train: Interactions, test: Interactions) -> None:
    """Every row on exactly one side, original order kept, maps and features shared."""
    tr, te = rows(train), rows(test)
    assert tr == sorted(tr) and te == sorted(te)
    assert sorted(tr + te) == list(range(data.nnz))
    for part in (train, test):
        assert part.users is data.users and part.items is data.items
        assert part.user_features is data.user_features and part.item_features is data.item_features


# -- stratified_split -------------------------------------------------------------------

# Users a (rows 0, 1, 3, 6), b (row 2), c (rows 4, 5, 7). RandomState(42).rand(8) =
# [.3745, .9507, .7320, .5987, .15602, .15599, .0581, .8662]
# a: sorted by draw 6, 0, 3, 1 -> round(0.75 * 4) = 3 in train: 6, 0, 3; test 1
# b: round(0.75) = 1 -> train
# c: sorted 5 (.15599), 4 (.15602), 7 -> round(2.25) = 2 in train: 5, 4; test 7
HAND_USERS = ["a", "a", "b", "a", "c", "c", "a", "c"]


def test_stratified_hand_worked() -> None:
    d = marked(HAND_USERS, list(range(10, 18)))
    train, test = stratified_split(d, ratio=0.75, seed=42)
    assert rows(train) == [0, 2, 3, 4, 5, 6]
    assert rows(test) == [1, 7]
    check_partition(d, train, test)


def test_stratified_by_item_hand_worked() -> None:
    d = marked(list(range(10, 18)), HAND_USERS)  # the same groups, now as items
    train, test = stratified_split(d, by="item")
    assert rows(test) == [1, 7]


def test_stratified_small_groups_round_half_to_even() -> None:
    # sizes 1..6 -> train round(0.75 n) = 1, 2 (1.5 -> 2), 2 (2.25), 3, 4 (3.75), 4 (4.5 -> 4)
    users = np.repeat(np.arange(6), np.arange(1, 7))
    items = np.concatenate([np.arange(k) for k in range(1, 7)])
    train, test = stratified_split(marked(users, items))
    assert np.bincount(train.user_index, minlength=6).tolist() == [1, 2, 2, 3, 4, 4]
    assert np.bincount(test.user_index, minlength=6).tolist() == [0, 0, 1, 1, 1, 2]


@settings(max_examples=30, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    data_seed=st.integers(0, 1000),
    ratio=st.sampled_from([0.1, 0.25, 0.5, 0.75, 0.8, 0.9]),
    by=st.sampled_from(["user", "item"]),
)
def test_stratified_matches_reference(seed: int, data_seed: int, ratio: float, by: str) -> None:
    d = random_data(data_seed, timestamps=False)
    train, test = stratified_split(d, ratio=ratio, by=by, seed=seed)  # type: ignore[arg-type]
    expected = reference_stratified(d.to_frame(), ratio, seed, by)
    assert set(rows(train)) == expected
    check_partition(d, train, test)
    groups, n = (d.user_index, d.n_users) if by == "user" else (d.item_index, d.n_items)
    tr_groups = train.user_index if by == "user" else train.item_index
    counts = np.bincount(groups, minlength=n)
    assert (np.bincount(tr_groups, minlength=n) == np.round(ratio * counts)).all()


@settings(max_examples=50, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.integers(99_998, 100_001),
            st.sampled_from([0.0, 0.5, 0.5 + 1e-12, 0.5 + 2e-12, 0.25, 1 - 1e-13, 1 - 1e-16, 0.75]),
        ),
        min_size=1,
        max_size=60,
    )
)
def test_group_draw_order_equals_lexsort(pairs: list[tuple[int, float]]) -> None:
    # Near 1e5 a float64 step is ~1.5e-11: these draws collide after adding the group,
    # within a group (0.5 vs 0.5 + 1e-12) and across groups (99_999 + (1 - 1e-13) == 100_000.0).
    groups = np.array([g for g, _ in pairs], dtype=np.int32)
    draw = np.array([d for _, d in pairs])
    assert np.array_equal(_order_by_group_then_draw(groups, draw), np.lexsort((draw, groups)))


def test_train_validation_split_is_stratified_with_its_own_seed() -> None:
    d = random_data(3, timestamps=False)
    train, test = stratified_split(d)
    fit, valid = train_validation_split(train)
    fit2, _ = stratified_split(train, seed=1234)
    assert rows(fit) == rows(fit2)
    assert rows(fit) != rows(stratified_split(train, seed=42)[0])
    assert set(rows(fit)) | set(rows(valid)) == set(rows(train))
    assert fit.users is test.users and valid.items is test.items


# -- temporal_split ---------------------------------------------------------------------


def test_temporal_per_user_ties_broken_by_item_id() -> None:
    # String ids. User u: items "b" and "a" share t=5. Order: x(1), a(5), b(5), c(7);
    # fraction 0.5 -> floor(2) = 2 -> b and c. User v: 1 row -> train only.
    d = marked(["u", "u", "u", "u", "v"], ["b", "a", "c", "x", "a"], [5, 5, 7, 1, 3])
    train, test = temporal_split(d, test_fraction=0.5)
    assert rows(test) == [0, 2]
    check_partition(d, train, test)
    # Integer ids compare as numbers (4 < 30), whatever their first-seen order.
    d = marked(["v", "v", "v"], [30, 4, 2], [9, 9, 3])
    assert rows(temporal_split(d, test_fraction=0.5)[1]) == [0]
    d = marked(["v", "v", "v"], [4, 30, 2], [9, 9, 3])
    assert rows(temporal_split(d, test_fraction=0.5)[1]) == [1]


def test_temporal_min_test_and_single_interaction_users() -> None:
    # sizes 1, 2, 3, 10 with fraction 0.2 and min_test=2:
    # n=1 -> 0 (a user keeps one train row); n=2 -> 1; n=3 -> 2; n=10 -> max(2, 2) = 2
    users = np.repeat(np.arange(4), [1, 2, 3, 10])
    items = np.concatenate([np.arange(k) for k in [1, 2, 3, 10]])
    d = marked(users, items, timestamps=np.arange(16))
    train, test = temporal_split(d, test_fraction=0.2, min_test=2)
    assert np.bincount(test.user_index, minlength=4).tolist() == [0, 1, 2, 2]
    assert rows(test) == [2, 4, 5, 14, 15]
    _, test0 = temporal_split(d, test_fraction=0.2, min_test=0)
    assert np.bincount(test0.user_index, minlength=4).tolist() == [0, 0, 0, 2]


def test_temporal_floor_is_tolerant_to_float_error() -> None:
    assert np.floor(0.29 * 100) == 28  # the trap
    d = marked(np.zeros(100, dtype=int), np.arange(100), timestamps=np.arange(100))
    _, test = temporal_split(d, test_fraction=0.29)
    assert rows(test) == list(range(71, 100))


@settings(max_examples=25, deadline=None)
@given(data_seed=st.integers(0, 1000), fraction=st.sampled_from([0.1, 0.2, 0.5, 0.7]))
def test_temporal_per_user_matches_reference(data_seed: int, fraction: float) -> None:
    d = random_data(data_seed)
    train, test = temporal_split(d, test_fraction=fraction)
    check_partition(d, train, test)
    df = d.to_frame()
    df["pos"] = np.arange(len(df))
    expected = []
    for _, g in df.groupby("user"):
        g = g.sort_values(["timestamp", "item"])
        k = min(max(1, int(np.floor(fraction * len(g) + 1e-9))), len(g) - 1)
        expected += g["pos"].tolist()[len(g) - k :]
    assert rows(test) == sorted(expected)
    # Nothing in a user's train is later than that user's test.
    for u in np.unique(test.user_index):
        assert train.timestamps[train.user_index == u].max() <= test.timestamps[test.user_index == u].min()


def test_temporal_global_cut_hand_worked() -> None:
    # ts sorted: 1 2 3 5 5 9 (n = 6). Fraction 0.4 -> target 2.4 test rows.
    # Cuts: at 9 -> 1 row, at 5 -> 3 rows, at 3 -> 4 rows. Nearest: 3 rows (|0.6|).
    d = marked(["a", "a", "a", "a", "a", "b"], [1, 2, 3, 4, 5, 1], timestamps=[9, 5, 5, 1, 2, 3])
    train, test = temporal_split(d, test_fraction=0.4, by="global")
    assert rows(test) == [0, 1, 2]
    check_partition(d, train, test)
    # Fraction 0.5 -> target 3: also the cut at 5. Fraction 0.6 -> 3.6: 4 rows (cut at 3).
    assert rows(temporal_split(d, test_fraction=0.6, by="global")[1]) == [0, 1, 2, 5]
    # A tiny fraction still leaves test non-empty: the cut at the last timestamp.
    assert rows(temporal_split(d, test_fraction=0.01, by="global")[1]) == [0]


def test_temporal_global_equal_distance_prefers_larger_test() -> None:
    # ts 1 2 3 4: fraction 0.375 -> 1.5 rows: 1 and 2 are equally near -> 2.
    d = marked([1, 1, 2, 2], [1, 2, 1, 2], timestamps=[1, 2, 3, 4])
    assert rows(temporal_split(d, test_fraction=0.375, by="global")[1]) == [2, 3]


@settings(max_examples=25, deadline=None)
@given(data_seed=st.integers(0, 1000), fraction=st.sampled_from([0.05, 0.2, 0.5, 0.9]))
def test_temporal_global_properties(data_seed: int, fraction: float) -> None:
    d = random_data(data_seed)
    train, test = temporal_split(d, test_fraction=fraction, by="global")
    check_partition(d, train, test)
    assert train.nnz > 0 and test.nnz > 0
    assert train.timestamps.max() < test.timestamps.min()  # ties never straddle the cut
    # No other cut gets nearer to the target.
    ts = np.sort(d.timestamps)
    sizes = [int((ts >= t).sum()) for t in np.unique(ts)[1:]]
    assert abs(test.nnz - fraction * d.nnz) == min(abs(s - fraction * d.nnz) for s in sizes)


def test_temporal_global_single_timestamp_is_an_error() -> None:
    d = Interactions.from_arrays([1, 2], [1, 1], timestamps=[5, 5])
    with pytest.raises(DataError, match="all 2 rows share one timestamp"):
        temporal_split(d, by="global")


def test_temporal_with_datetime_timestamps() -> None:
    ts = pd.to_datetime(["2020-01-03", "2020-01-01", "2020-01-02", "2020-01-01"])
    d = Interactions.from_arrays([1, 1, 1, 2], [1, 2, 3, 1], ratings=np.arange(4), timestamps=ts)
    _, test = temporal_split(d, test_fraction=0.34)
    assert rows(test) == [0]


# -- leave_last_n -----------------------------------------------------------------------


def test_leave_last_n() -> None:
    # sizes 1, 2, 3, 4 with n=2: test 0 (train-only), 1, 2, 2
    users = np.repeat(np.arange(4), [1, 2, 3, 4])
    items = np.concatenate([np.arange(k)[::-1] for k in [1, 2, 3, 4]])
    ts = np.concatenate([[7] * k for k in [1, 2, 3, 4]])  # all ties: order by item id
    d = marked(users, items, ts)
    train, test = leave_last_n(d, n=2)
    assert np.bincount(test.user_index, minlength=4).tolist() == [0, 1, 2, 2]
    # items were written in decreasing order, so the largest ids are the first rows of each user
    assert rows(test) == [1, 3, 4, 6, 7]
    check_partition(d, train, test)
    _, test1 = leave_last_n(d)
    assert rows(test1) == [1, 3, 6]


# -- k_fold -----------------------------------------------------------------------------


def surprise_kfold(n: int, n_folds: int, seed: int) -> list[list[int]]:
    """Surprise's KFold(shuffle=True) loop over row indices."""
    idx = np.arange(n)
    np.random.RandomState(seed).shuffle(idx)
    out, stop = [], 0
    for f in range(n_folds):
        start = stop
        stop += n // n_folds + (1 if f < n % n_folds else 0)
        out.append(sorted(idx[start:stop].tolist()))
    return out


@pytest.mark.parametrize("n_folds,seed", [(2, 0), (3, 42), (5, 7), (7, 123)])
def test_k_fold_matches_surprise(n_folds: int, seed: int) -> None:
    d = random_data(seed, n=103, timestamps=False)
    folds = k_fold(d, n_folds=n_folds, seed=seed)
    expected = surprise_kfold(d.nnz, n_folds, seed)
    assert [rows(te) for _, te in folds] == expected
    sizes = [te.nnz for _, te in folds]
    assert max(sizes) - min(sizes) <= 1 and sum(sizes) == d.nnz
    assert sorted(r for _, te in folds for r in rows(te)) == list(range(d.nnz))
    for train, test in folds:
        check_partition(d, train, test)


# -- split_report, features, warnings -----------------------------------------------------


def test_split_report_hand_worked_and_catalogue_items() -> None:
    item_features = pd.DataFrame({"item": [1, 2, 3, 99], "genre": ["x", "y", "x", "z"]})  # 99: catalogue-only
    d = Interactions.from_arrays(
        ["a", "a", "b", "c", "c"], [1, 2, 2, 3, 1], ratings=np.arange(5), item_features=item_features
    )
    assert d.n_items == 4 and d.item_counts[d.items.index_of(99)] == 0
    train, test = d.take([0, 1, 2]), d.take([3, 4])
    # test rows (c, 3), (c, 1): user c is cold twice; item 3 is cold once; item 99 is never counted
    assert split_report(train, test) == SplitReport(
        n_train=3, n_test=2, cold_user_rows=2, cold_item_rows=1, cold_users=1, cold_items=1
    )
    tr, te = stratified_split(d)
    assert tr.n_items == te.n_items == 4 and tr.item_features is d.item_features
    check_partition(d, tr, te)


def test_split_report_rejects_unrelated_maps() -> None:
    a = Interactions.from_arrays([1, 2], [1, 2])
    b = Interactions.from_arrays([1, 3], [1, 2])
    with pytest.raises(DataError, match="same user id map"):
        split_report(a, b)
    with pytest.raises(DataTypeError, match="'test' parameter of split_report must be an Interactions"):
        split_report(a, b.to_frame())


def test_splits_emit_no_warning() -> None:
    d = random_data(5)  # small groups: plenty of cold rows
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for train, test in [
            stratified_split(d, by="item"),
            temporal_split(d),
            temporal_split(d, by="global"),
            leave_last_n(d),
            *k_fold(d),
        ]:
            split_report(train, test)


# -- errors -----------------------------------------------------------------------------


@pytest.mark.parametrize("ratio", [1.5, 0.0, 1.0, -0.2, True, "0.5", float("nan"), None])
def test_bad_ratio(ratio: object) -> None:
    d = random_data(0)
    with pytest.raises(ParameterError, match=r"The 'ratio' parameter of stratified_split must be a (finite )?float > 0\.0 and < 1\.0"):
        stratified_split(d, ratio=ratio)  # type: ignore[arg-type]
    with pytest.raises(ParameterError, match="'ratio' parameter of train_validation_split"):
        train_validation_split(d, ratio=ratio)  # type: ignore[arg-type]


def test_error_messages() -> None:
    d = random_data(0)
    no_ts = random_data(0, timestamps=False)
    with pytest.raises(ParameterError, match=r"must be a float > 0\.0 and < 1\.0\. Got 1\.5 instead\."):
        stratified_split(d, ratio=1.5)
    with pytest.raises(ParameterError, match="'by' parameter of stratified_split must be one of 'user', 'item'. Got 'row'"):
        stratified_split(d, by="row")  # type: ignore[arg-type]
    with pytest.raises(ParameterError, match="'seed' parameter of stratified_split must be an int in \\[0, 4294967295\\]. Got -1"):
        stratified_split(d, seed=-1)
    with pytest.raises(ParameterError, match="'by' parameter of temporal_split must be one of 'user', 'global'"):
        temporal_split(d, by="item")  # type: ignore[arg-type]
    with pytest.raises(ParameterError, match="'test_fraction' parameter of temporal_split"):
        temporal_split(d, test_fraction=2)
    with pytest.raises(ParameterError, match="'min_test' parameter of temporal_split must be an int >= 0. Got -1"):
        temporal_split(d, min_test=-1)
    with pytest.raises(ParameterError, match="'n' parameter of leave_last_n must be an int >= 1. Got 0"):
        leave_last_n(d, n=0)
    with pytest.raises(ParameterError, match="'n_folds' parameter of k_fold must be an int >= 2. Got 1"):
        k_fold(d, n_folds=1)
    with pytest.raises(ParameterError, match=r"at most the number of interactions \(2\)\. Got 3"):
        k_fold(Interactions.from_arrays([1, 2], [1, 1]), n_folds=3)
    with pytest.raises(ParameterError, match="'seed' parameter of k_fold"):
        k_fold(d, seed=1.5)  # type: ignore[arg-type]
    for fn in (temporal_split, leave_last_n):
        with pytest.raises(DataError, match=f"{fn.__name__} needs timestamps"):
            fn(no_ts)
    with pytest.raises(DataTypeError, match="'data' parameter of stratified_split must be an Interactions"):
        stratified_split(d.to_frame())  # type: ignore[arg-type]
    with pytest.raises(DataTypeError, match="'train' parameter of train_validation_split"):
        train_validation_split([1, 2])  # type: ignore[arg-type]


# -- MovieLens 100K -----------------------------------------------------------------------


def test_ml100k_published_split_sizes(ml100k_dir: str) -> None:
    df = pd.read_csv(
        os.path.join(ml100k_dir, "ml-100k", "u.data"), sep="\t", names=["user", "item", "rating", "timestamp"]
    )
    d = Interactions.from_frame(df, rating_col="rating", timestamp_col="timestamp")
    train, test = stratified_split(d, ratio=0.75, seed=42)
    assert (train.nnz, test.nnz) == (74_992, 25_008)
    # Row for row the MS Recommenders selection.
    train_rows = set(map(tuple, train.to_frame()[["user", "item"]].to_numpy().tolist()))
    ref = reference_stratified(df, 0.75, 42, "user")
    assert train_rows == set(map(tuple, df.iloc[sorted(ref)][["user", "item"]].to_numpy().tolist()))
    train, test = temporal_split(d, test_fraction=0.2, by="user")
    assert (train.nnz, test.nnz) == (80_367, 19_633)
    assert split_report(train, test).cold_user_rows == 0
