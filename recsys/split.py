"""Train / test splits of :class:`~recsys.data.Interactions`.

Every function returns :class:`~recsys.data.Interactions` built with
:meth:`Interactions.take`, so train and test share the SAME id maps and
feature tables (an index means the same user / item on both sides) and rows
keep their original relative order on each side. Every input row lands in
exactly one side.

Test rows whose user or item has no train row ("cold" rows) are possible with
every splitter. The splitters never warn about them; call
:func:`split_report` to count them.

Examples
--------
>>> from recsys.data import Interactions
>>> d = Interactions.from_arrays([1, 1, 1, 1, 2, 2], [1, 2, 3, 4, 1, 2], timestamps=[1, 2, 3, 4, 1, 2])
>>> train, test = temporal_split(d, test_fraction=0.25)
>>> test.to_frame()[["user", "item"]].values.tolist()
[[1, 4], [2, 2]]
>>> split_report(train, test)
SplitReport(n_train=4, n_test=2, cold_user_rows=0, cold_item_rows=1, cold_users=0, cold_items=1)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
from numpy.typing import NDArray

from recsys._utils.params import check_choice, check_float, check_int
from recsys.data import Interactions
from recsys.errors import DataError, DataTypeError, ParameterError

__all__ = [
    "SplitReport",
    "k_fold",
    "leave_last_n",
    "leave_one_out",
    "split_report",
    "stratified_split",
    "temporal_split",
    "train_validation_split",
]

# Fractions are floored with this tolerance so that e.g. 0.29 * 100 (= 28.999...96
# in floating point) counts as 29.
_FLOOR_TOL = 1e-9


# -- parameter checks ------------------------------------------------------------


def _check_data(data: Any, fn: str, name: str = "data") -> None:
    if not isinstance(data, Interactions):
        raise DataTypeError(
            f"The '{name}' parameter of {fn} must be an Interactions (build one with "
            f"Interactions.from_frame). Got {type(data).__name__} instead."
        )


def _timestamps(data: Interactions, fn: str) -> NDArray[Any]:
    if data.timestamps is None:
        raise DataError(
            f"{fn} needs timestamps and these interactions have none "
            "(pass timestamp_col when building them, or use stratified_split)"
        )
    return data.timestamps


# -- shared machinery ---------------------------------------------------------------


def _order_by_group_then_draw(groups: NDArray[np.int32], draw: NDArray[np.float64]) -> NDArray[np.int64]:
    """Row order sorted by (group, draw), ties by row position: ``np.lexsort((draw, groups))``.

    One quicksort of ``group + draw`` (draw in [0, 1)) instead of lexsort's two
    stable passes; tests/test_split.py checks it equals ``np.lexsort``. Rounding is monotone, so
    the only rows it can misorder are those whose sums round to the same float;
    those rare runs are re-sorted exactly.
    """
    key = groups.astype(np.float64) + draw
    order = np.argsort(key)
    k = key[order]
    tie = np.flatnonzero(k[1:] == k[:-1])
    if len(tie):
        pos = np.unique(np.concatenate([tie, tie + 1]))
        sub = np.sort(order[pos])  # row order, so exact ties stay in row order below
        order[pos] = sub[np.lexsort((draw[sub], groups[sub]))]
    return order.astype(np.int64, copy=False)


def _rank_in_group(
    groups: NDArray[np.int32], n_groups: int, order: NDArray[np.int64]
) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
    """Rank (0-based) of every row within its group, given a row order sorted by
    group first; and the group sizes."""
    counts = np.bincount(groups, minlength=n_groups).astype(np.int64)
    starts = np.cumsum(counts) - counts
    rank = np.empty(len(groups), dtype=np.int64)
    rank[order] = np.arange(len(groups), dtype=np.int64) - starts[groups[order]]
    return rank, counts


def _by_mask(data: Interactions, test_mask: NDArray[np.bool_]) -> tuple[Interactions, Interactions]:
    return data.take(np.flatnonzero(~test_mask)), data.take(np.flatnonzero(test_mask))


def _stratified(
    data: Interactions, ratio: Any, by: Any, seed: Any, fn: str, data_name: str
) -> tuple[Interactions, Interactions]:
    _check_data(data, fn, data_name)
    ratio = check_float(fn, "ratio", ratio, low=0.0, high=1.0, low_open=True, high_open=True)
    by = check_choice(fn, "by", by, ("user", "item"))
    seed = check_int(fn, "seed", seed, low=0, high=2**32 - 1)
    groups, n_groups = (data.user_index, data.n_users) if by == "user" else (data.item_index, data.n_items)
    # One draw per row in the original row order, as MS Recommenders does.
    draw = np.random.RandomState(seed).rand(data.nnz)
    rank, counts = _rank_in_group(groups, n_groups, _order_by_group_then_draw(groups, draw))
    n_train = np.round(ratio * counts).astype(np.int64)  # numpy rounding: half to even
    return _by_mask(data, rank >= n_train[groups])


def _last_per_user(data: Interactions, n_test: NDArray[np.int64], fn: str) -> tuple[Interactions, Interactions]:
    """Put the last ``n_test[u]`` rows of each user (by timestamp, then external item id) in test."""
    _timestamps(data, fn)
    groups = data.user_index
    # histories() orders rows by (user, timestamp, external item id) and is cached on data.
    rank, counts = _rank_in_group(groups, data.n_users, data.histories().rows)
    return _by_mask(data, rank >= (counts - n_test)[groups])


# -- public splitters ----------------------------------------------------------------


def stratified_split(
    data: Interactions,
    ratio: float = 0.75,
    by: Literal["user", "item"] = "user",
    seed: int = 42,
) -> tuple[Interactions, Interactions]:
    """Random per-user (or per-item) holdout, row for row as Microsoft Recommenders'
    ``python_stratified_split``.

    One number is drawn per row with ``numpy.random.RandomState(seed).rand(nnz)``
    in the original row order; each group's rows are sorted by that draw and the
    first ``round(ratio * n_group)`` go to train (numpy rounding, half to even:
    a group of 2 with ratio 0.75 keeps both rows in train, a group of 1 keeps
    its row in train). With the same seed and ratio, and data in the same row
    order, the selected rows are exactly those of MS Recommenders (their default
    ``min_rating=1``, i.e. no filtering), so metrics are comparable with their
    published tables.

    Parameters
    ----------
    data : Interactions
    ratio : float in (0, 1), default 0.75
        Share of each group's rows that goes to train.
    by : {"user", "item"}
        The groups: users (every user keeps ``ratio`` of its rows in train)
        or items.
    seed : int in [0, 2**32 - 1], default 42

    Returns
    -------
    (train, test) : tuple of Interactions
        Sharing ``data``'s id maps and features, rows in original order.

    Raises
    ------
    DataTypeError
        ``data`` is not an Interactions.
    ParameterError
        A parameter is out of range.

    Examples
    --------
    >>> from recsys.data import Interactions
    >>> d = Interactions.from_arrays([1, 1, 1, 1, 2, 2], [1, 2, 3, 4, 1, 2])
    >>> train, test = stratified_split(d)
    >>> train.nnz, test.nnz, train.items is test.items
    (5, 1, True)
    """
    return _stratified(data, ratio, by, seed, "stratified_split", "data")


def train_validation_split(
    train: Interactions,
    ratio: float = 0.75,
    by: Literal["user", "item"] = "user",
    seed: int = 1234,
) -> tuple[Interactions, Interactions]:
    """Carve a validation split out of a train split, for tuning without touching test.

    The same algorithm as :func:`stratified_split`. The default seed differs
    (1234 instead of 42) so that the validation draw is not the test draw
    replayed on the train rows.

    Parameters
    ----------
    train : Interactions
        The train side of an earlier split.
    ratio : float in (0, 1), default 0.75
        Share of each group's rows kept for fitting.
    by : {"user", "item"}
    seed : int in [0, 2**32 - 1], default 1234

    Returns
    -------
    (fit, validation) : tuple of Interactions
        Both share ``train``'s id maps (hence also the test split's).

    Raises
    ------
    DataTypeError, ParameterError
        As :func:`stratified_split`.

    Examples
    --------
    >>> from recsys.data import Interactions
    >>> d = Interactions.from_arrays([1] * 8 + [2] * 4, list(range(8)) + list(range(4)))
    >>> train, test = stratified_split(d)
    >>> fit, valid = train_validation_split(train, ratio=0.5)
    >>> fit.nnz, valid.nnz, fit.users is test.users
    (5, 4, True)
    """
    return _stratified(train, ratio, by, seed, "train_validation_split", "train")


def temporal_split(
    data: Interactions,
    test_fraction: float = 0.2,
    by: Literal["user", "global"] = "user",
    min_test: int = 1,
) -> tuple[Interactions, Interactions]:
    """Hold out the most recent interactions, per user or with one global time cut.

    ``by="user"``: each user's rows are ordered by (timestamp, external item id)
    and the last ``max(min_test, floor(test_fraction * n))`` go to test, but
    never all of them: a user always keeps at least one train row, so a user
    with a single interaction is train-only, and a user with ``n <= min_test``
    rows puts ``n - 1`` in test. (``floor`` is taken with a 1e-9 tolerance so
    that ``0.29 * 100`` gives 29, not 28.)

    ``by="global"``: one cut time ``t``; test holds every row with timestamp
    ``>= t``, train every row before, so rows sharing a timestamp always land
    on the same side. ``t`` is the distinct timestamp whose test share is
    nearest to ``test_fraction`` (on a tie, the larger test side), among those
    that leave both sides non-empty. ``min_test`` is not used.

    Parameters
    ----------
    data : Interactions
        Must have timestamps.
    test_fraction : float in (0, 1), default 0.2
    by : {"user", "global"}
    min_test : int >= 0, default 1
        Per-user minimum number of test rows (``by="user"`` only; capped as above).

    Returns
    -------
    (train, test) : tuple of Interactions

    Raises
    ------
    DataError
        No timestamps; or ``by="global"`` and all rows share one timestamp.
    DataTypeError, ParameterError
        Bad ``data`` or parameter.

    Examples
    --------
    >>> from recsys.data import Interactions
    >>> d = Interactions.from_arrays(["a"] * 5 + ["b"], [1, 2, 3, 4, 5, 1], timestamps=[9, 5, 5, 1, 2, 3])
    >>> train, test = temporal_split(d, test_fraction=0.4)
    >>> test.to_frame()[["user", "item"]].values.tolist()  # the tie at t=5 is broken by item id
    [['a', 1], ['a', 3]]
    >>> train, test = temporal_split(d, test_fraction=0.4, by="global")
    >>> sorted(test.timestamps.tolist())
    [5, 5, 9]
    """
    fn = "temporal_split"
    _check_data(data, fn)
    test_fraction = check_float(fn, "test_fraction", test_fraction, low=0.0, high=1.0, low_open=True, high_open=True)
    by = check_choice(fn, "by", by, ("user", "global"))  # type: ignore[assignment]
    min_test = check_int(fn, "min_test", min_test, low=0)
    ts = _timestamps(data, fn)
    if by == "global":
        return _by_mask(data, ts >= _global_cut(ts, test_fraction))
    counts = data.user_counts
    n_test = np.maximum(min_test, np.floor(test_fraction * counts + _FLOOR_TOL).astype(np.int64))
    n_test = np.minimum(n_test, np.maximum(counts - 1, 0))
    return _last_per_user(data, n_test, fn)


def _global_cut(ts: NDArray[Any], test_fraction: float) -> Any:
    uniq, counts = np.unique(ts, return_counts=True)
    if len(uniq) < 2:
        raise DataError(
            "temporal_split(by='global') cannot separate train from test: all "
            f"{len(ts)} rows share one timestamp"
        )
    # Test size if the cut is at uniq[j]: every row at or after it.
    test_sizes = np.cumsum(counts[::-1])[::-1][1:]
    j = int(np.argmin(np.abs(test_sizes - test_fraction * len(ts))))
    return uniq[1 + j]


def leave_last_n(data: Interactions, n: int = 1) -> tuple[Interactions, Interactions]:
    """Leave-last-n-out: each user's last ``n`` rows (by timestamp, then external
    item id) go to test.

    A user always keeps at least one train row: a user with ``k <= n`` rows puts
    only its last ``k - 1`` in test (a single-interaction user is train-only).

    Parameters
    ----------
    data : Interactions
        Must have timestamps.
    n : int >= 1, default 1

    Returns
    -------
    (train, test) : tuple of Interactions

    Raises
    ------
    DataError
        No timestamps.
    DataTypeError, ParameterError
        Bad ``data`` or ``n``.

    Examples
    --------
    >>> from recsys.data import Interactions
    >>> d = Interactions.from_arrays([1, 1, 1, 2], [7, 8, 9, 7], timestamps=[3, 1, 2, 1])
    >>> train, test = leave_last_n(d)
    >>> test.to_frame()[["user", "item"]].values.tolist()
    [[1, 7]]
    """
    fn = "leave_last_n"
    _check_data(data, fn)
    n = check_int(fn, "n", n, low=1)
    _timestamps(data, fn)
    counts = data.user_counts
    return _last_per_user(data, np.minimum(n, np.maximum(counts - 1, 0)), fn)


def leave_one_out(data: Interactions) -> tuple[Interactions, Interactions, Interactions]:
    """Leave-one-out for next-item evaluation: each user's last row is test, the one before it
    validation, the rest train (last by timestamp, then external item id, as :func:`leave_last_n`).

    :func:`leave_last_n` applied twice: a user with two rows has no validation
    row, a user with one row only a train row.

    Parameters
    ----------
    data : Interactions
        Must have timestamps.

    Returns
    -------
    (train, validation, test) : tuple of Interactions

    Raises
    ------
    DataError
        No timestamps.

    Examples
    --------
    >>> from recsys.data import Interactions
    >>> d = Interactions.from_arrays([1, 1, 1, 2, 2], [7, 8, 9, 7, 8], timestamps=[3, 1, 2, 1, 2])
    >>> [p.to_frame()[["user", "item"]].values.tolist() for p in leave_one_out(d)]
    [[[1, 8], [2, 7]], [[1, 9]], [[1, 7], [2, 8]]]
    """
    rest, test = leave_last_n(data, 1)
    train, validation = leave_last_n(rest, 1)
    return train, validation, test


def k_fold(data: Interactions, n_folds: int = 5, seed: int = 42) -> list[tuple[Interactions, Interactions]]:
    """K-fold cross-validation over rows, as Surprise's ``KFold(shuffle=True)``.

    The rows are shuffled with ``numpy.random.RandomState(seed)`` and cut into
    ``n_folds`` consecutive folds whose sizes differ by at most one (the first
    ``nnz % n_folds`` folds hold one extra row). Every row is in exactly one
    test fold. Each fold is a full copy of its rows: on very large data, mind
    that the list holds ``n_folds`` copies.

    Parameters
    ----------
    data : Interactions
    n_folds : int >= 2, default 5
        At most ``data.nnz``.
    seed : int in [0, 2**32 - 1], default 42

    Returns
    -------
    list of (train, test)
        One pair per fold, sharing ``data``'s id maps.

    Raises
    ------
    DataTypeError, ParameterError
        Bad ``data``, ``n_folds`` or ``seed``.

    Examples
    --------
    >>> from recsys.data import Interactions
    >>> d = Interactions.from_arrays([1, 1, 2, 2, 3], [1, 2, 1, 3, 2])
    >>> [(tr.nnz, te.nnz) for tr, te in k_fold(d, n_folds=2)]
    [(2, 3), (3, 2)]
    """
    fn = "k_fold"
    _check_data(data, fn)
    n_folds = check_int(fn, "n_folds", n_folds, low=2)
    seed = check_int(fn, "seed", seed, low=0, high=2**32 - 1)
    if n_folds > data.nnz:
        raise ParameterError(
            f"The 'n_folds' parameter of k_fold must be at most the number of interactions "
            f"({data.nnz}). Got {n_folds} instead."
        )
    perm = np.random.RandomState(seed).permutation(data.nnz)
    sizes = np.full(n_folds, data.nnz // n_folds, dtype=np.int64)
    sizes[: data.nnz % n_folds] += 1
    fold = np.empty(data.nnz, dtype=np.int32)
    fold[perm] = np.repeat(np.arange(n_folds, dtype=np.int32), sizes)
    return [_by_mask(data, fold == f) for f in range(n_folds)]


# -- reporting -----------------------------------------------------------------------


@dataclass(frozen=True)
class SplitReport:
    """Sizes of a split and its cold-start test rows.

    Attributes
    ----------
    n_train, n_test : int
        Rows on each side.
    cold_user_rows, cold_item_rows : int
        Test rows whose user (item) has no train row.
    cold_users, cold_items : int
        Distinct users (items) of test that have no train row.
    """

    n_train: int
    n_test: int
    cold_user_rows: int
    cold_item_rows: int
    cold_users: int
    cold_items: int


def split_report(train: Interactions, test: Interactions) -> SplitReport:
    """Count the test rows, users and items that have no train interaction.

    Items known only from the item feature table (catalogue-only, no rows) are
    never in test, so they are never counted.

    Parameters
    ----------
    train, test : Interactions
        Two sides of one split (they must share their id maps).

    Returns
    -------
    SplitReport

    Raises
    ------
    DataTypeError
        An argument is not an Interactions.
    DataError
        ``train`` and ``test`` have different id maps.

    Examples
    --------
    >>> from recsys.data import Interactions
    >>> d = Interactions.from_arrays([1, 1, 2], [5, 6, 6])
    >>> split_report(d.take([0, 1]), d.take([2]))
    SplitReport(n_train=2, n_test=1, cold_user_rows=1, cold_item_rows=0, cold_users=1, cold_items=0)
    """
    _check_data(train, "split_report", "train")
    _check_data(test, "split_report", "test")
    for what, a, b in (("user", train.users, test.users), ("item", train.items, test.items)):
        if a is not b and a != b:
            raise DataError(
                f"split_report needs train and test with the same {what} id map "
                f"(got {len(a)} and {len(b)} {what}s); split them from one Interactions with recsys.split"
            )
    u_warm = np.bincount(train.user_index, minlength=train.n_users) > 0
    i_warm = np.bincount(train.item_index, minlength=train.n_items) > 0
    u_test = np.bincount(test.user_index, minlength=test.n_users) > 0
    i_test = np.bincount(test.item_index, minlength=test.n_items) > 0
    return SplitReport(
        n_train=train.nnz,
        n_test=test.nnz,
        cold_user_rows=int(np.count_nonzero(~u_warm[test.user_index])),
        cold_item_rows=int(np.count_nonzero(~i_warm[test.item_index])),
        cold_users=int(np.count_nonzero(u_test & ~u_warm)),
        cold_items=int(np.count_nonzero(i_test & ~i_warm)),
    )

