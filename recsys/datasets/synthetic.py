"""A synthetic recommendation dataset with known structure, from tiny to ML-25M sized.

The generative story (everything drawn from one seeded generator):

* Items belong to one of ``n_categories`` categories; each category has a unit
  centroid in a ``n_factors``-dimensional latent space and an item's latent
  vector is its category centroid plus noise. Users have a favourite category
  and a latent vector built the same way. The preference of user ``u`` for item
  ``i`` is ``score = <user vector, item vector>``, scaled to unit standard
  deviation over random pairs.
* Items have a power-law (Zipf-like) popularity: the item of popularity rank
  ``r`` (ranks are shuffled over item ids) is drawn with probability
  ``∝ r ** -popularity_exponent`` (a continuous Zipf law, sampled by inverse CDF).
* Users have a log-normal activity; the per-user counts add up to exactly
  ``n_interactions``; every user has at least one row when
  ``n_interactions >= n_users``, and at most half the catalogue (more only
  when the requested density needs it).
* Each interaction: ``n_candidates`` items are drawn from the popularity law
  and the user picks one with probability ``∝ exp(preference_strength * score)``
  (a user browsing popular items picks the one they like). A pair already
  picked is re-drawn, so each (user, item) pair occurs at most once. The rare
  users still short after a few rounds (heavy users of a small catalogue) get
  their remaining items by weighted sampling without replacement with weights
  ``popularity * exp(preference_strength * score)`` over the items they have
  not picked.
* Optional sequential signal (``sequential > 0``): each category has a
  successor category (a random permutation of the categories: a per-category
  Markov chain) and each item three successor items in its category's
  successor, drawn by popularity. Along each user's rows, every interaction
  after the first follows the chain with probability ``sequential``: it
  becomes a random successor of the previous item (moved up from later in
  the user's rows if the user picks it anyway, else replacing the row's
  item; skipped when the user already had it earlier). Users keep their
  counts and timestamps; only which items, and in what order, change. These
  draws come from their own generator (seeded from ``seed``), so every other
  draw, and the whole output with ``sequential=0`` (the default), is as
  without the option.
* Ratings 1..5 grow with the score, plus user and item biases and noise.
* Timestamps are int64 Unix seconds: each user starts at a random time in
  2015-2019 and their rows follow with exponential gaps, so they are
  non-decreasing along each user's rows (ties are possible, as in real logs).
* Item features: ``category`` (categorical), ``genres`` (multi-valued list; the
  category first, then 0-2 related categories) and ``title`` (2-4 words mostly
  from the vocabulary of the item's genres, so content models can learn from
  text). User features: ``favourite_genre`` (categorical; the user's favourite
  category 60% of the time, a random one otherwise) and ``age`` (numeric,
  correlated with the first latent factor).

External ids are the integers ``0..n_users-1`` and ``0..n_items-1``. Rows are
grouped by user (users in id order), time-ordered within a user. Users or
items without interactions (possible when ``n_interactions`` is small) are
still in the id maps through the feature tables, so ``n_users`` and
``n_items`` of the result are exactly as asked.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, TypedDict, Unpack, overload

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from recsys._utils.params import check_float, check_int
from recsys.data import Interactions
from recsys.errors import ParameterError

__all__ = ["SyntheticData", "synthetic"]

_GENRES: dict[str, tuple[str, ...]] = {
    "action": ("mission", "strike", "chase", "fury", "blast", "force", "target", "escape"),
    "comedy": ("wedding", "party", "roommates", "oops", "vacation", "buddies", "prank", "neighbours"),
    "drama": ("letters", "silence", "family", "promise", "winter", "daughter", "truth", "home"),
    "horror": ("haunting", "curse", "blood", "cellar", "ghost", "scream", "ritual", "shadows"),
    "romance": ("love", "kiss", "heart", "paris", "summer", "wedding", "forever", "darling"),
    "scifi": ("galaxy", "robot", "planet", "android", "orbit", "clone", "starship", "quantum"),
    "thriller": ("conspiracy", "witness", "hostage", "alibi", "pursuit", "deadline", "betrayal", "agent"),
    "animation": ("dragon", "bunny", "toys", "kingdom", "puppy", "penguin", "magic", "island"),
    "documentary": ("story", "nature", "ocean", "history", "inside", "climate", "music", "people"),
    "crime": ("heist", "mob", "detective", "murder", "gang", "cartel", "verdict", "undercover"),
    "fantasy": ("wizard", "sword", "realm", "prophecy", "elves", "throne", "quest", "enchanted"),
    "war": ("battalion", "frontline", "trenches", "sniper", "bunker", "soldiers", "invasion", "medal"),
    "western": ("outlaw", "sheriff", "saloon", "frontier", "ranch", "gunslinger", "canyon", "bounty"),
    "musical": ("song", "dance", "stage", "rhythm", "melody", "broadway", "chorus", "encore"),
    "mystery": ("clue", "secret", "riddle", "puzzle", "manor", "missing", "cipher", "vanishing"),
    "children": ("adventure", "school", "friends", "treehouse", "birthday", "pet", "camp", "giant"),
    "sports": ("champion", "team", "coach", "season", "victory", "rookie", "league", "comeback"),
    "noir": ("rain", "dame", "neon", "smoke", "city", "midnight", "dark", "streets"),
}
_FILLERS = ("the", "of", "a", "last", "return", "night", "my", "in", "new", "two")
_SYLLABLES = ("ka", "lo", "mi", "ren", "tu", "sha", "vo", "zel", "pri", "dan", "qu", "ix")
_T0 = 1_420_070_400  # 2015-01-01T00:00:00Z
_START_SPAN = 4 * 365 * 86_400
_CHUNK = 1 << 18  # interactions sampled per user block: bounds memory at any size
_ROUNDS = 5


@dataclass(frozen=True)
class SyntheticData:
    """Everything :func:`synthetic` makes, for ``return_frames=True``.

    Attributes
    ----------
    interactions : Interactions
        The same object ``synthetic`` returns by default.
    frame : pandas.DataFrame
        The rows: ``user``, ``item`` (external ids), ``rating`` (int8, 1..5),
        ``timestamp`` (int64 seconds).
    user_features : pandas.DataFrame
        ``user``, ``favourite_genre``, ``age``; one row per user id.
    item_features : pandas.DataFrame
        ``item``, ``category``, ``genres``, ``title``; one row per item id.
    user_factors, item_factors : numpy.ndarray of float32
        Ground-truth latent vectors, row ``k`` for external id ``k`` (use
        ``item_factors[data.items.ids]`` to align with internal indices).
    item_popularity : numpy.ndarray of float64
        Probability of each item id in a popularity draw (sums to 1).
    """

    interactions: Interactions
    frame: pd.DataFrame
    user_features: pd.DataFrame
    item_features: pd.DataFrame
    user_factors: NDArray[np.float32]
    item_factors: NDArray[np.float32]
    item_popularity: NDArray[np.float64]


class _SyntheticOptions(TypedDict, total=False):
    """The keyword-only parameters of :func:`synthetic` (for its typed overloads)."""

    seed: int
    n_factors: int
    n_categories: int
    popularity_exponent: float
    preference_strength: float
    n_candidates: int
    sequential: float


@overload
def synthetic(
    n_users: int = ...,
    n_items: int = ...,
    n_interactions: int = ...,
    *,
    return_frames: Literal[False] = ...,
    **options: Unpack[_SyntheticOptions],
) -> Interactions: ...


@overload
def synthetic(
    n_users: int = ...,
    n_items: int = ...,
    n_interactions: int = ...,
    *,
    return_frames: Literal[True],
    **options: Unpack[_SyntheticOptions],
) -> SyntheticData: ...


def synthetic(
    n_users: int = 1000,
    n_items: int = 500,
    n_interactions: int = 20000,
    *,
    seed: int = 42,
    n_factors: int = 8,
    n_categories: int = 10,
    popularity_exponent: float = 1.0,
    preference_strength: float = 3.0,
    n_candidates: int = 12,
    sequential: float = 0.0,
    return_frames: bool = False,
) -> Interactions | SyntheticData:
    """A deterministic synthetic dataset with popularity skew, latent preferences,
    ratings, timestamps and user / item features (see the module docstring for
    the generative story).

    Parameters
    ----------
    n_users, n_items : int >= 1
    n_interactions : int >= 1
        Exact number of rows; at most ``n_users * n_items`` (each pair occurs
        at most once).
    seed : int >= 0
        Same seed (and parameters), same data.
    n_factors : int >= 1
        Dimension of the latent space.
    n_categories : int >= 1
        Item categories (named after film genres; beyond 18, made-up names).
    popularity_exponent : float >= 0, default 1.0
        Zipf exponent of item popularity (0: uniform).
    preference_strength : float >= 0, default 3.0
        How strongly users pick items they like among the candidates (0: pure
        popularity).
    n_candidates : int >= 1, default 12
        Popularity-drawn candidates per pick (1: pure popularity).
    sequential : float in [0, 1], default 0.0
        Probability that a user's next item follows the per-category Markov
        chain from the previous one (see the module docstring); 0 keeps the
        data free of any order signal beyond time.
    return_frames : bool, default False
        Return a :class:`SyntheticData` with the frames and ground truth
        instead of only the :class:`Interactions`.

    Returns
    -------
    Interactions or SyntheticData
        Interactions with ratings, timestamps and features;
        ``n_users x n_items`` id maps, ``n_interactions`` rows.

    Raises
    ------
    ParameterError
        A parameter is out of range, or ``n_interactions > n_users * n_items``.

    Examples
    --------
    >>> data = synthetic(n_users=50, n_items=30, n_interactions=400, seed=1)
    >>> data.n_users, data.n_items, data.nnz
    (50, 30, 400)
    >>> sorted(data.item_feature_kinds.items())
    [('category', 'categorical'), ('genres', 'multi'), ('title', 'text')]
    >>> int(data.ratings.min()) >= 1 and int(data.ratings.max()) <= 5
    True
    >>> markov = synthetic(n_users=50, n_items=30, n_interactions=400, seed=1, sequential=0.8)
    >>> bool((markov.user_counts == data.user_counts).all())
    True
    """
    n_users = check_int("synthetic", "n_users", n_users, low=1)
    n_items = check_int("synthetic", "n_items", n_items, low=1)
    n_interactions = check_int("synthetic", "n_interactions", n_interactions, low=1)
    seed = check_int("synthetic", "seed", seed, low=0)
    n_factors = check_int("synthetic", "n_factors", n_factors, low=1)
    n_categories = check_int("synthetic", "n_categories", n_categories, low=1)
    n_candidates = check_int("synthetic", "n_candidates", n_candidates, low=1)
    popularity_exponent = check_float("synthetic", "popularity_exponent", popularity_exponent, low=0.0)
    preference_strength = check_float("synthetic", "preference_strength", preference_strength, low=0.0)
    sequential = check_float("synthetic", "sequential", sequential, low=0.0, high=1.0)
    if n_interactions > n_users * n_items:
        raise ParameterError(
            f"The 'n_interactions' parameter of synthetic must be at most n_users * n_items "
            f"({n_users} * {n_items} = {n_users * n_items}): each (user, item) pair occurs at most once. "
            f"Got {n_interactions} instead."
        )
    rng = np.random.default_rng(seed)

    # Latent structure: categories, item and user vectors.
    cat_weights = rng.dirichlet(np.full(n_categories, 3.0))
    centroids = rng.standard_normal((n_categories, n_factors))
    centroids /= np.linalg.norm(centroids, axis=1, keepdims=True)
    item_cat = rng.choice(n_categories, size=n_items, p=cat_weights)
    fav_cat = rng.choice(n_categories, size=n_users, p=cat_weights)
    noise = 0.8 / np.sqrt(n_factors)
    item_vec = (centroids[item_cat] + noise * rng.standard_normal((n_items, n_factors))).astype(np.float32)
    user_vec = (centroids[fav_cat] + noise * rng.standard_normal((n_users, n_factors))).astype(np.float32)
    # Unit-variance scores over random pairs, so preference_strength has one meaning at every size.
    pu = rng.integers(0, n_users, 20_000)
    pi = rng.integers(0, n_items, 20_000)
    scale = np.std(np.einsum("nf,nf->n", user_vec[pu], item_vec[pi]))
    user_vec /= np.float32(max(scale, 1e-6))

    # Popularity: continuous Zipf over shuffled ranks.
    rank_to_item = rng.permutation(n_items).astype(np.int32)
    edges = _zipf_cdf(np.arange(n_items + 1, dtype=np.float64) + 1.0, n_items, popularity_exponent)
    popularity = np.empty(n_items)
    popularity[rank_to_item] = np.diff(edges)

    # At most half the catalogue per user (unless the requested density needs more).
    cap = max(n_items // 2, -(-n_interactions // n_users))
    counts = _allocate(n_interactions, rng.lognormal(0.0, 1.0, n_users), cap)

    law = _Law(user_vec, item_vec, rank_to_item, popularity, popularity_exponent, preference_strength, n_candidates)
    users, items, scores = _sample_pairs(rng, counts, law)
    if sequential > 0:
        items, scores = _markov_chain(np.random.default_rng([seed, 97]), counts, items, item_cat, law, sequential)

    timestamps = _timestamps(rng, counts, len(users))
    ratings = _ratings(rng, users, items, scores, n_users, n_items, popularity)
    del scores

    item_features = _item_features(rng, item_cat, item_vec, centroids)
    user_features = _user_features(rng, fav_cat, user_vec, n_categories)
    data = Interactions.from_arrays(
        users, items, ratings=ratings, timestamps=timestamps,
        user_features=user_features, item_features=item_features,
    )  # fmt: skip
    if not return_frames:
        return data
    frame = pd.DataFrame({"user": users, "item": items, "rating": ratings, "timestamp": timestamps})
    return SyntheticData(
        interactions=data,
        frame=frame,
        user_features=user_features,
        item_features=item_features,
        user_factors=user_vec,
        item_factors=item_vec,
        item_popularity=popularity,
    )


# -- popularity ---------------------------------------------------------------------


def _zipf_cdf(x: NDArray[np.float64], n: int, a: float) -> NDArray[np.float64]:
    """CDF at ``x`` (in [1, n+1]) of the density ``∝ x**-a`` on [1, n+1]."""
    if abs(a - 1.0) < 1e-9:
        return np.log(x) / np.log(n + 1.0)
    return (x ** (1.0 - a) - 1.0) / ((n + 1.0) ** (1.0 - a) - 1.0)


def _draw_items(
    rng: np.random.Generator, size: int, n: int, a: float, rank_to_item: NDArray[np.int32]
) -> NDArray[np.int32]:
    """Popularity draws by inverse CDF of the continuous Zipf law (no per-item table search)."""
    u = rng.random(size)
    if abs(a - 1.0) < 1e-9:
        x = np.exp(u * np.log(n + 1.0))
    else:
        x = (1.0 + u * ((n + 1.0) ** (1.0 - a) - 1.0)) ** (1.0 / (1.0 - a))
    r = np.minimum(x.astype(np.int64), n) - 1  # rank 0..n-1
    return rank_to_item[r]


# -- per-user activity -----------------------------------------------------------------


def _allocate(total: int, activity: NDArray[np.float64], cap: int) -> NDArray[np.int64]:
    """Integer counts proportional to ``activity`` that add up to ``total``, each in
    [1, cap] (or [0, cap] when there are fewer rows than users)."""
    n = len(activity)
    counts = np.zeros(n, dtype=np.int64)
    if total >= n:
        counts += 1
    remaining = total - int(counts.sum())
    while remaining > 0:  # largest remainders; repeats only to hand on what the cap cut off
        room = cap - counts
        w = np.where(room > 0, activity, 0.0)
        share = remaining * w / w.sum()
        add = np.floor(share).astype(np.int64)
        rest = remaining - int(add.sum())
        add[np.argsort(add - share, kind="stable")[:rest]] += 1
        add = np.minimum(add, room)
        counts += add
        remaining -= int(add.sum())
    return counts


# -- sampling -----------------------------------------------------------------------------


@dataclass(frozen=True)
class _Law:
    """How a user picks: latent vectors, the popularity law (Zipf ``exponent``
    over ``rank_to_item``), the preference strength ``beta`` and ``m``
    candidates per pick."""

    user_vec: NDArray[np.float32]
    item_vec: NDArray[np.float32]
    rank_to_item: NDArray[np.int32]
    popularity: NDArray[np.float64]
    exponent: float
    beta: float
    m: int


def _sample_pairs(
    rng: np.random.Generator, counts: NDArray[np.int64], law: _Law
) -> tuple[NDArray[np.int32], NDArray[np.int32], NDArray[np.float32]]:
    """Distinct (user, item) rows grouped by user (users in id order), and their scores."""
    ends = np.cumsum(counts)
    total = int(ends[-1])
    users = np.empty(total, dtype=np.int32)
    items = np.empty(total, dtype=np.int32)
    scores = np.empty(total, dtype=np.float32)
    start = 0
    while start < len(counts):
        # A block of users with about _CHUNK interactions (at least one user): bounded memory.
        offset = int(ends[start - 1]) if start else 0
        stop = max(start + 1, int(np.searchsorted(ends, offset + _CHUNK, side="right")))
        block = np.arange(start, stop)
        sl = slice(offset, int(ends[stop - 1]))
        users[sl], items[sl], scores[sl] = _sample_block(rng, block, counts[block], law)
        start = stop
    return users, items, scores


def _sample_block(
    rng: np.random.Generator, block: NDArray[np.int64], need: NDArray[np.int64], law: _Law
) -> tuple[NDArray[np.int32], NDArray[np.int32], NDArray[np.float32]]:
    """Picks for a block of users: a few rounds of candidate draws, each dropping
    pairs already picked, then exact sampling for whoever is still short."""
    item_vec, beta, m = law.item_vec, law.beta, law.m
    n_items = len(item_vec)
    need = need.copy()
    total = int(need.sum())
    out_keys = np.empty(total, dtype=np.int64)  # user * n_items + item
    out_scores = np.empty(total, dtype=np.float32)
    filled = 0
    seen = np.empty(0, dtype=np.int64)  # sorted keys picked so far
    rate = np.full(len(need), 0.9)  # per user: share of draws that gave a new item last round
    block_vec = law.user_vec[block]
    for _ in range(_ROUNDS):
        active = np.flatnonzero(need > 0)
        if len(active) == 0:
            break
        draws = np.ceil(need[active] / rate[active]).astype(np.int64) + 1
        local = np.repeat(active, draws)
        rows = np.arange(len(local))
        cand = _draw_items(rng, len(local) * m, n_items, law.exponent, law.rank_to_item).reshape(-1, m)
        vecs = np.take(item_vec, cand.ravel(), axis=0).reshape(len(local), m, -1)
        s = np.einsum("dmf,df->dm", vecs, np.take(block_vec, local, axis=0))
        del vecs
        if m > 1 and beta > 0:
            # Exponential race: argmax(beta*s - log E) picks j with probability ∝ exp(beta * s_j).
            e = rng.standard_exponential(s.shape, dtype=np.float32)
            j = np.argmax(beta * s - np.log(np.maximum(e, np.float32(1e-30))), axis=1)
        else:
            j = np.zeros(len(local), dtype=np.int64)
        keys = block[local] * n_items + cand[rows, j]
        picked_scores = s[rows, j]
        uniq, first = np.unique(keys, return_index=True)
        if len(seen):
            fresh = seen[np.minimum(np.searchsorted(seen, uniq), len(seen) - 1)] != uniq
            uniq, first = uniq[fresh], first[fresh]
        o = np.argsort(first)  # new keys in draw order (draws are grouped by user)
        lu = local[first[o]]
        n_new = np.bincount(lu, minlength=len(need))
        ok = np.arange(len(o)) - (np.cumsum(n_new) - n_new)[lu] < need[lu]
        keep = first[o[ok]]
        keys_kept = keys[keep]
        out_keys[filled : filled + len(keep)] = keys_kept
        out_scores[filled : filled + len(keep)] = picked_scores[keep]
        filled += len(keep)
        drawn = np.bincount(local, minlength=len(need))
        rate[active] = np.clip(n_new[active] / drawn[active], 0.02, 0.95)
        need -= np.bincount(local[keep], minlength=len(need))
        in_seen = np.zeros(len(uniq), dtype=bool)
        in_seen[o[ok]] = True
        new_sorted = uniq[in_seen]
        seen = new_sorted if len(seen) == 0 else np.insert(seen, np.searchsorted(seen, new_sorted), new_sorted)
    if need.any():
        k, sc = _sample_rest(rng, block, need, seen, law)
        out_keys[filled:], out_scores[filled:] = k, sc
    # Rows grouped by user, in random order within a user (later rounds pick rarer
    # items; row order becomes time order).
    user_of = out_keys // n_items
    order = np.lexsort((rng.random(total), user_of))
    return user_of[order].astype(np.int32), (out_keys[order] % n_items).astype(np.int32), out_scores[order]


def _sample_rest(
    rng: np.random.Generator, block: NDArray[np.int64], need: NDArray[np.int64], seen: NDArray[np.int64], law: _Law
) -> tuple[NDArray[np.int64], NDArray[np.float32]]:
    """Weighted sampling without replacement (Gumbel top-k, weights
    ``popularity * exp(beta * score)``) over the items a user has not picked yet."""
    user_vec, item_vec, popularity, beta = law.user_vec, law.item_vec, law.popularity, law.beta
    n_items = len(item_vec)
    log_pop = np.log(np.maximum(popularity, 1e-300)).astype(np.float32)
    short = np.flatnonzero(need > 0)
    rows_per_step = max(1, (1 << 22) // n_items)
    out_keys, out_scores = [], []
    for at in range(0, len(short), rows_per_step):
        loc = short[at : at + rows_per_step]
        users = block[loc]
        logits = log_pop[None, :] + beta * (user_vec[users] @ item_vec.T)
        e = rng.standard_exponential(logits.shape, dtype=np.float32)
        logits -= np.log(np.maximum(e, np.float32(1e-30)))
        # Items already picked are out.
        lo = np.searchsorted(seen, users * n_items)
        n_taken = np.searchsorted(seen, (users + 1) * n_items) - lo
        row = np.repeat(np.arange(len(users)), n_taken)
        taken = seen[np.arange(len(row)) - np.repeat(np.cumsum(n_taken) - n_taken - lo, n_taken)] % n_items
        logits[row, taken] = -np.inf
        k = need[loc]
        k_max = int(k.max())
        top = np.argpartition(-logits, k_max - 1, axis=1)[:, :k_max] if k_max < n_items else None
        if top is None:
            top = np.broadcast_to(np.arange(n_items), logits.shape)
        top = np.take_along_axis(top, np.argsort(-np.take_along_axis(logits, top, axis=1), axis=1), axis=1)
        picked = top[np.arange(k_max)[None, :] < k[:, None]]
        owner = np.repeat(users, k)
        out_keys.append(owner * n_items + picked)
        out_scores.append(np.einsum("nf,nf->n", user_vec[owner], item_vec[picked]))
    return np.concatenate(out_keys), np.concatenate(out_scores)


def _markov_chain(
    rng: np.random.Generator,
    counts: NDArray[np.int64],
    items: NDArray[np.int32],
    item_cat: NDArray[np.int64],
    law: _Law,
    strength: float,
    n_successors: int = 3,
) -> tuple[NDArray[np.int32], NDArray[np.float32]]:
    """Make each user's row after the first follow the chain from the previous row's item with
    probability ``strength`` (see the module docstring); returns the new items and their scores."""
    n_items = len(item_cat)
    n_cat = int(item_cat.max()) + 1
    next_cat = rng.permutation(n_cat)
    successors = np.empty((n_items, n_successors), dtype=np.int32)
    for c in range(n_cat):
        members = np.flatnonzero(item_cat == next_cat[c])
        if len(members) == 0:  # an empty category: any item
            members = np.arange(n_items)
        p = law.popularity[members] / law.popularity[members].sum()
        src = np.flatnonzero(item_cat == c)
        successors[src] = members[rng.choice(len(members), size=(len(src), n_successors), p=p)]
    items = items.copy()
    users_per_block = max(1, (1 << 22) // n_items)  # bounds the block's position matrix
    starts = np.cumsum(counts) - counts
    for b0 in range(0, len(counts), users_per_block):
        block = np.arange(b0, min(len(counts), b0 + users_per_block))
        local_n = counts[block]
        base = int(starts[block[0]])
        sl = slice(base, base + int(local_n.sum()))
        where = np.full((len(block), n_items), -1, dtype=np.int64)  # row (within the block) of each picked item
        lu = np.repeat(np.arange(len(block)), local_n)
        where[lu, items[sl]] = np.arange(len(lu))
        first = starts[block] - base
        for t in range(1, int(local_n.max(initial=0))):
            u = np.flatnonzero(local_n > t)
            follow = rng.random(len(u)) < strength
            pick = rng.integers(0, n_successors, len(u))
            u, pick = u[follow], pick[follow]
            r = first[u] + t
            cand = successors[items[base + r - 1], pick]
            at = where[u, cand]
            fresh, later = at < 0, at > r
            old = items[base + r].astype(np.int64)
            # a later pick of the same item moves up (swap); an item not picked replaces this row's
            sw = np.flatnonzero(later)
            items[base + at[sw]] = old[sw]
            where[u[sw], old[sw]] = at[sw]
            ch = np.flatnonzero(fresh | later)
            where[u[np.flatnonzero(fresh)], old[fresh]] = -1
            items[base + r[ch]] = cand[ch]
            where[u[ch], cand[ch]] = r[ch]
    owner = np.repeat(np.arange(len(counts)), counts)
    return items, np.einsum("nf,nf->n", law.user_vec[owner], law.item_vec[items]).astype(np.float32)


# -- values -----------------------------------------------------------------------------


def _timestamps(rng: np.random.Generator, counts: NDArray[np.int64], n_rows: int) -> NDArray[np.int64]:
    """Per user: a start in 2015-2019, then exponential gaps (mean ~1 day, varying by user)."""
    n_users = len(counts)
    start = _T0 + rng.integers(0, _START_SPAN, n_users)
    mean_gap = 86_400 * rng.lognormal(0.0, 1.0, n_users)
    owner = np.repeat(np.arange(n_users), counts)
    gaps = rng.standard_exponential(n_rows) * mean_gap[owner]
    gaps[np.cumsum(counts)[counts > 0] - counts[counts > 0]] = 0.0  # each user's first row is its start
    t = np.cumsum(gaps)
    first = np.cumsum(counts) - counts
    base = np.zeros(n_users)
    has = counts > 0
    base[has] = t[first[has]]
    return (start[owner] + (t - base[owner])).astype(np.int64)


def _ratings(
    rng: np.random.Generator,
    users: NDArray[np.int32],
    items: NDArray[np.int32],
    scores: NDArray[np.float32],
    n_users: int,
    n_items: int,
    popularity: NDArray[np.float64],
) -> NDArray[np.int8]:
    """1..5 stars rising with the preference score, plus user / item biases and noise."""
    z = (scores - scores.mean()) / max(float(scores.std()), 1e-6)
    user_bias = rng.normal(0.0, 0.35, n_users).astype(np.float32)
    pop_z = np.log(popularity)
    pop_z = (pop_z - pop_z.mean()) / max(float(pop_z.std()), 1e-6)
    item_bias = (0.15 * pop_z + rng.normal(0.0, 0.3, n_items)).astype(np.float32)
    latent = 3.55 + 0.75 * z + user_bias[users] + item_bias[items]
    latent += rng.normal(0.0, 0.6, len(users)).astype(np.float32)
    return np.clip(np.rint(latent), 1, 5).astype(np.int8)


# -- features ------------------------------------------------------------------------------


def _category_names_and_words(rng: np.random.Generator, n_categories: int) -> tuple[list[str], list[tuple[str, ...]]]:
    names = list(_GENRES)[:n_categories]
    words = [_GENRES[n] for n in names]
    for k in range(len(names), n_categories):
        syl = rng.choice(len(_SYLLABLES), size=(9, 3))
        made = tuple(dict.fromkeys("".join(_SYLLABLES[j] for j in row) for row in syl))
        names.append(f"genre{k}")
        words.append(made[:8])
    return names, words


def _item_features(
    rng: np.random.Generator, item_cat: NDArray[np.int64], item_vec: NDArray[np.float32], centroids: NDArray[np.float64]
) -> pd.DataFrame:
    n_items, n_cat = len(item_cat), len(centroids)
    names, words = _category_names_and_words(rng, n_cat)
    # Secondary genres: categories near the item's latent vector.
    n_extra = np.minimum(rng.choice(3, size=n_items, p=[0.5, 0.35, 0.15]), n_cat - 1)
    near = 3.0 * (item_vec @ centroids.T.astype(np.float32)) + rng.gumbel(size=(n_items, n_cat)).astype(np.float32)
    near[np.arange(n_items), item_cat] = -np.inf
    extra = np.argsort(-near, axis=1)[:, : min(2, max(n_cat - 1, 0))]
    genres = [[names[c]] + [names[e] for e in extra[i, : n_extra[i]]] for i, c in enumerate(item_cat.tolist())]
    # Titles: 2-4 words, mostly from the genres' vocabularies.
    n_words = rng.integers(2, 5, n_items)
    u = rng.random((n_items, 4))
    pick = rng.integers(0, 1 << 30, (n_items, 4))
    titles = []
    for i in range(n_items):
        title = []
        for j in range(int(n_words[i])):
            if u[i, j] < 0.1:
                vocab = _FILLERS
            elif u[i, j] < 0.75 or n_extra[i] == 0:
                vocab = words[item_cat[i]]
                title.append(vocab[(pick[i, 0] + j) % len(vocab)])  # consecutive: no repeats
                continue
            else:
                vocab = words[extra[i, pick[i, j] % n_extra[i]]]
            title.append(vocab[pick[i, j] % len(vocab)])
        titles.append(" ".join(title).capitalize())
    return pd.DataFrame(
        {
            "item": np.arange(n_items, dtype=np.int64),
            "category": pd.Categorical.from_codes(item_cat, categories=names),
            "genres": pd.Series(genres, dtype=object),
            "title": pd.Series(titles, dtype=object),
        }
    )


def _user_features(
    rng: np.random.Generator, fav_cat: NDArray[np.int64], user_vec: NDArray[np.float32], n_categories: int
) -> pd.DataFrame:
    n_users = len(fav_cat)
    names = list(_GENRES)[:n_categories] + [f"genre{k}" for k in range(len(_GENRES), n_categories)]
    declared = np.where(rng.random(n_users) < 0.6, fav_cat, rng.integers(0, n_categories, n_users))
    f0 = user_vec[:, 0].astype(np.float64)
    z = (f0 - f0.mean()) / max(float(f0.std()), 1e-6)
    age = np.clip(np.rint(36 + 9 * z + rng.normal(0, 7, n_users)), 16, 80).astype(np.int64)
    return pd.DataFrame(
        {
            "user": np.arange(n_users, dtype=np.int64),
            "favourite_genre": pd.Categorical.from_codes(declared, categories=names),
            "age": age,
        }
    )
