"""Content-based recommendation from item texts, and hybrids of a CF and a content model.

The text encoders these models use are in :mod:`recsys.content`; this module
holds the models (``recsys.models.content`` re-exports them under the older name).

:class:`ContentBased` embeds every catalogue item's text (built from the item
feature table) with a :class:`~recsys.content.TextEncoder`, and represents a
user by the weighted mean of the embeddings of the items in their history.
Because item vectors come from text, items nobody has interacted with yet
(cold-start items) are scored like any other, and a new user is served from
a history alone (:meth:`~recsys.models.base.Recommender.recommend_history`).

:class:`Hybrid` blends the per-user normalised scores of a collaborative
model and a content model, so cold items get content scores and warm items
both.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any, ClassVar, Literal, Never

import numpy as np
import scipy.sparse as sp
from numpy.typing import NDArray

from recsys._state_spec import Array, Model, Sparse, Spec
from recsys._utils.params import check_bool, check_choice, check_float
from recsys._utils.registry import as_component as _as_component
from recsys._utils.registry import stored_as
from recsys.content._base import TextEncoder
from recsys.content._text import TextSpec, item_texts
from recsys.data import Interactions
from recsys.errors import DataError, DataWarning, NotSupportedError, ParameterError
from recsys.models._embedding import EmbeddingRecommender
from recsys.models._explain import Explanation, blended_explanation, linear_explanation, unscored
from recsys.models._normalise import normalised as _normalised
from recsys.models._normalise import normalising_map
from recsys.models._weighting import PROFILE_VALUES, ProfileValues
from recsys.models.base import Recommender

Normalise = Literal["minmax", "zscore", "rank"]
Cold = Literal["content", "blend"]


def _unit_rows(x: NDArray[np.float32]) -> NDArray[np.float32]:
    """Rows scaled to unit L2 norm; zero rows stay zero."""
    x = np.asarray(x, dtype=np.float32)
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return np.divide(x, norms, out=np.zeros_like(x), where=norms > 0)


def _profile_weights(
    values: str,
    half_life: float | None,
    users: NDArray[np.int32],
    n_users: int,
    weights: NDArray[np.float32] | None,
    ratings: NDArray[np.float32] | None,
    timestamps: NDArray[Any] | None,
) -> NDArray[np.float64]:
    """Weight of each interaction in its user's profile (see :class:`ContentBased`)."""
    n = len(users)
    if values == "weight" or ratings is None:
        w = np.ones(n) if weights is None else weights.astype(np.float64)
    elif values == "rating":
        w = ratings.astype(np.float64)
    else:
        r = ratings.astype(np.float64)
        counts = np.bincount(users, minlength=n_users)
        means = np.bincount(users, weights=r, minlength=n_users) / np.maximum(counts, 1)
        w = r - means[users]
        # a user whose ratings are all equal has no preference signal left: weigh the items equally
        spread = np.bincount(users, weights=np.abs(w), minlength=n_users)
        w = np.where(spread[users] > 0, w, 1.0)
    if half_life is not None and timestamps is not None and n:
        t = timestamps.astype(np.int64 if timestamps.dtype.kind in "iuM" else np.float64)
        latest = np.full(n_users, t.min(), dtype=t.dtype)
        np.maximum.at(latest, users, t)
        age = (latest[users] - t).astype(np.float64)
        w = w * np.exp2(-age / float(half_life))
    return w


def _refuse_removed(owner: str, removed: dict[str, Any]) -> None:
    """A keyword ``ContentBased`` no longer takes: ``weighting`` (now ``values``) or an unknown one."""
    if "weighting" in removed:
        old = removed["weighting"]
        raise ParameterError(
            f"{owner}(weighting={old!r}) is the old spelling: where the profile weights come from is now "
            f"values={old!r} ({owner} has no tfidf/bm25 re-weighting)."
        )
    raise TypeError(f"{owner}.__init__() got an unexpected keyword argument {next(iter(removed))!r}")


# artifacts and configs name both classes by the module they were first saved from
@stored_as("recsys.models.content.ContentBased")
class ContentBased(EmbeddingRecommender):
    """Recommends items whose text is close to the texts of the items a user interacted with.

    Fitting builds one text per catalogue item from the item features
    (:func:`recsys.content.item_texts`), fits the encoder on them where it
    learns (Doc2Vec, hashing idf) and encodes them. Item vectors
    (``item_embeddings_``) are the embeddings scaled to unit length, then,
    with ``center=True``, minus their mean over the catalogue and scaled to
    unit length again; an item without text gets the zero vector and scores 0.
    Centring removes the direction every item shares: sentence embeddings
    are anisotropic (all-MiniLM-L6-v2 gives most pairs of movie descriptions
    a cosine well above 0), so without it a profile mostly measures how
    typical an item is rather than what this user likes (Mu & Viswanath,
    "All-but-the-Top", 2018). On ML-100K it lifts BERT's validation
    NDCG@10 and cold-start recall@10 about 3x (benchmarks/results/content.md).
    A user's profile is
    ``p_u = sum_i w_ui e_i`` over their training interactions, scaled to unit
    length (the direction of the weighted mean), and ``score(u, j) = p_u · e_j``,
    the cosine between profile and item. Every catalogue item is a candidate,
    including items without any training interaction (cold-start items).

    Weights ``w_ui`` (``values``: where they come from): ``"weight"`` the
    interaction weights (1 for plain interactions); ``"rating"`` the
    ratings; ``"centered"`` the rating minus the user's mean rating, so
    below-average items push the profile away (a user whose ratings are all
    equal gets equal weights). With ``half_life``,
    each weight is also multiplied by ``0.5 ** (age / half_life)``, ``age``
    being the time from the interaction to the user's latest one.
    :meth:`recommend_history` applies the same rules to the ``ratings`` and
    ``timestamps`` it is given; without them every history item weighs the
    same (no centring, no decay).

    :meth:`explain` splits ``score(u, j)`` over the history: item ``i``
    contributes ``w_ui / |sum w e| * (e_i · e_j)`` (columns ``weight``, the
    normalised profile weight, and ``similarity``, the cosine).

    A saved model holds the item embeddings, not the encoder: a loaded model
    recommends for known users, folds in histories of known items and finds
    similar items without the encoder (and without gensim or
    sentence-transformers). Embedding texts of NEW items needs a refit with
    the encoder.

    Parameters
    ----------
    encoder : TextEncoder, optional
        Default :class:`~recsys.content.BertEncoder()` (the bundled
        all-MiniLM-L6-v2). Fitting uses a fresh copy; the given object is not changed.
    text : None, str or callable
        How item texts are built from the item features (see
        :func:`~recsys.content.item_texts`): the default description, a format
        template such as ``"{title}. {genres}"``, or a function of a row. A
        model built with a function cannot be saved or written to a config
        (functions have no JSON form): put the text in a feature column and
        use a template instead.
    values : {"weight", "rating", "centered"}, default "weight"
        Where an interaction's weight in the profile comes from (above). It
        was called ``weighting`` before; ``weighting=`` is refused with a
        message naming ``values=``, and saved models and configs that use it
        still load.
    half_life : float, optional
        In the units of the timestamps (nanoseconds for datetimes); None: no decay.
    center : bool, default True
        Subtract the mean unit embedding of the catalogue's items (those with
        text) before scoring; False keeps the encoder's cosine geometry.

    Raises
    ------
    DataError
        (at fit) The data has no item features; ``values="rating"`` or
        ``"centered"`` without ratings; ``half_life`` without timestamps.
    ParameterError
        ``weighting=`` (the former name of ``values``).

    Examples
    --------
    >>> from recsys.content import HashingEncoder
    >>> from recsys.testing import tiny_interactions
    >>> model = ContentBased(encoder=HashingEncoder(dim=256)).fit(tiny_interactions())
    >>> ids, scores = model.recommend_one(0, k=3)
    >>> [int(i) % 2 for i in ids]  # user 0's own group: even items
    [0, 0, 0]
    >>> 1000 in model.recommend_history([0, 2, 4], k=32)[0]  # an item nobody interacted with
    True
    """

    _state_spec: ClassVar[dict[str, Spec]] = {
        "item_embeddings_": Array(shape=("n_items", "dim")),
        "profile_weights_": Sparse(shape=("n_users", "n_items")),
    }

    scores_cold_items = True

    def __init__(
        self,
        encoder: TextEncoder | None = None,
        text: TextSpec = None,
        values: ProfileValues = "weight",
        half_life: float | None = None,
        center: bool = True,
        **removed: Never,
    ) -> None:
        if removed:
            _refuse_removed(type(self).__name__, removed)
        self.encoder = encoder
        self.text = text
        self.values = values
        self.half_life = half_life
        self.center = center

    @classmethod
    def _upgrade_params(cls, params: dict[str, Any]) -> dict[str, Any]:
        # saved before the rename: `weighting` named where the profile weights come from
        if "weighting" not in params or "values" in params:
            return params
        return {("values" if k == "weighting" else k): v for k, v in params.items()}

    def _validate_params(self) -> None:
        owner = type(self).__name__
        if self.encoder is not None:
            _as_component(self.encoder, TextEncoder, "encoder", owner)
        if self.text is not None and not isinstance(self.text, str) and not callable(self.text):
            raise ParameterError(
                f"The 'text' parameter of {owner} must be None, a format template (str) or a function of a row. "
                f"Got {type(self.text).__name__} instead."
            )
        check_choice(owner, "values", self.values, PROFILE_VALUES)
        if self.half_life is not None:
            check_float(owner, "half_life", self.half_life, low=0.0, low_open=True)
        check_bool(owner, "center", self.center)

    def _new_encoder(self) -> TextEncoder:
        if self.encoder is None:
            from recsys.content import BertEncoder

            return BertEncoder()
        enc: TextEncoder = _as_component(self.encoder, TextEncoder, "encoder", type(self).__name__)
        return enc.clone()

    def _fit(self, data: Interactions) -> None:
        if self.values != "weight" and data.ratings is None:
            raise DataError(f"ContentBased(values={self.values!r}) needs ratings; these interactions have none")
        if self.half_life is not None and data.timestamps is None:
            raise DataError("ContentBased(half_life=...) needs timestamps; these interactions have none")
        texts = item_texts(data, self.text)
        empty = sum(1 for t in texts if not t.strip())
        if empty:
            warnings.warn(
                f"{empty} of {len(texts)} items have no text in their features; they get zero embeddings "
                "(score 0 for every user)",
                DataWarning,
                stacklevel=3,
            )
        encoder = self._new_encoder()
        encoder.fit(texts)
        emb = _unit_rows(encoder.encode(texts))
        if self.center:
            has_text = emb.any(axis=1)
            if has_text.sum() > 1:
                emb[has_text] -= emb[has_text].mean(axis=0, dtype=np.float64).astype(np.float32)
                emb = _unit_rows(emb)
        self.item_embeddings_ = emb
        w = _profile_weights(
            self.values, self.half_life, data.user_index, data.n_users, data.weights, data.ratings, data.timestamps
        )
        m = sp.csr_matrix((w.astype(np.float32), (data.user_index, data.item_index)), shape=(data.n_users, data.n_items))
        m.sum_duplicates()
        self.profile_weights_ = m
        self._encoder = encoder

    def _item_vectors(self) -> NDArray[np.float32]:
        return np.asarray(self.item_embeddings_, dtype=np.float32)

    def _user_vectors(self, user_idx: NDArray[np.int32]) -> NDArray[np.float32]:
        return _unit_rows(np.asarray(self.profile_weights_[user_idx] @ self._item_vectors()))

    def _history_weights(self, item_idx: NDArray[np.int32], ratings: NDArray[np.float32] | None, timestamps: NDArray[Any] | None) -> NDArray[np.float64]:
        """Profile weight of each history entry (the rules of the fit, for one user)."""
        users = np.zeros(len(item_idx), dtype=np.int32)
        ts = None if timestamps is None else np.asarray(timestamps)
        if ts is not None and ts.dtype.kind not in "iufM":
            raise DataError(f"timestamps must be numbers or datetimes; got dtype {ts.dtype}")
        if ts is not None and ts.dtype.kind == "M":
            ts = ts.astype("datetime64[ns]").astype(np.int64)
        return _profile_weights(self.values, self.half_life, users, 1, None, ratings, ts)

    def _history_vector(
        self, item_idx: NDArray[np.int32], ratings: NDArray[np.float32] | None, timestamps: NDArray[Any] | None
    ) -> NDArray[np.float32]:
        w = self._history_weights(item_idx, ratings, timestamps)
        items = self._item_vectors()
        return _unit_rows((w.astype(np.float32) @ items[item_idx])[None, :])[0]

    def _explain(self, user_idx: int, item_idx: int) -> Explanation:
        row = self.profile_weights_[user_idx]
        return self._explain_profile(row.indices, row.data, item_idx)

    def _explain_history(
        self, item_idx: NDArray[np.int32], ratings: NDArray[np.float32] | None, timestamps: NDArray[Any] | None, target: int
    ) -> Explanation:
        return self._explain_profile(item_idx, self._history_weights(item_idx, ratings, timestamps), target)

    def _explain_profile(self, items: NDArray[Any], weights: NDArray[Any], target: int) -> Explanation:
        """``score = p · e_t`` with ``p = sum_j w_j e_j / |sum_j w_j e_j|``: history item ``j`` contributes
        its normalised profile weight ``w_j / |sum w e|`` (column ``weight``) times the cosine ``e_j · e_t``
        (column ``similarity``)."""
        emb = np.asarray(self._item_vectors(), dtype=np.float64)
        idx = np.asarray(items, dtype=np.int64)
        w = np.asarray(weights, dtype=np.float64)
        norm = float(np.linalg.norm(w @ emb[idx]))
        share = w / norm if norm > 0 else np.zeros_like(w)
        exp = linear_explanation(idx, share, emb[idx] @ emb[target], value="weight", weight="similarity")
        return exp

    def _similar_items(self, item_idx: NDArray[np.int32]) -> NDArray[np.float32]:
        items = self._item_vectors()
        return np.asarray(items[item_idx] @ items.T, dtype=np.float32)


@stored_as("recsys.models.content.Hybrid")
class Hybrid(Recommender):
    """Blend of a collaborative model and a content model on per-user normalised scores.

    Both models are fitted on the same data (fresh copies; the given objects
    are not changed). For each user (or history) each model's scores are
    normalised (``normalise``) using only the items that model can score:
    the items with training interactions for ``cf``, every item for a
    content model. Then, for items with training interactions,
    ``score = weight * cf + (1 - weight) * content``; for cold items (no
    training interaction, so no CF signal) ``cold="content"`` uses the
    content score alone and ``cold="blend"`` blends it with the lowest CF
    score of the row. ``weight=1`` with ``cold="content"`` is "CF for known
    items, content for cold ones".

    The two cold rules are a trade-off. ``"blend"`` ranks a cold item below
    every warm item with the same content score, so new items rarely reach
    a top-k; ``"content"`` ranks cold items by content alone on the same
    normalised scale, which promotes them (on ML-100K it multiplies the
    recall of held-out new items several times and costs warm top-N
    accuracy; see benchmarks/results/content.md). Tune ``weight``,
    ``normalise`` and ``cold`` on a validation split of the task you serve.

    :meth:`explain` splits a score as :class:`Blend` does (columns ``cf``
    and ``content``; a cold item's CF floor with ``cold="blend"`` is the term
    ``cf.floor``); not with ``normalise="rank"``.

    Parameters
    ----------
    cf : Recommender, optional
        Default :class:`~recsys.models.ItemKNN()`.
    content : Recommender, optional
        A model that scores cold items (``scores_cold_items``); default
        :class:`ContentBased()`.
    weight : float in [0, 1], default 0.5
        Share of the CF score.
    normalise : {"minmax", "zscore", "rank"}, default "minmax"
    cold : {"content", "blend"}, default "content"

    Raises
    ------
    ParameterError
        (at fit) ``content`` cannot score items without interactions.

    Examples
    --------
    >>> from recsys.content import HashingEncoder
    >>> from recsys.models import Popular
    >>> from recsys.testing import tiny_interactions
    >>> model = Hybrid(cf=Popular(), content=ContentBased(encoder=HashingEncoder(dim=256)), weight=0.3)
    >>> ids, _ = model.fit(tiny_interactions()).recommend_one(0, k=3)
    >>> [int(i) % 2 for i in ids]
    [0, 0, 0]
    """

    _state_spec: ClassVar[dict[str, Spec]] = {"cf_": Model(), "content_": Model()}

    scores_cold_items = True

    def __init__(
        self,
        cf: Recommender | None = None,
        content: Recommender | None = None,
        weight: float = 0.5,
        normalise: Normalise = "minmax",
        cold: Cold = "content",
    ) -> None:
        self.cf = cf
        self.content = content
        self.weight = weight
        self.normalise = normalise
        self.cold = cold

    def _validate_params(self) -> None:
        owner = type(self).__name__
        for name in ("cf", "content"):
            value = getattr(self, name)
            if value is not None:
                _as_component(value, Recommender, name, owner)
        check_float(owner, "weight", self.weight, low=0.0, high=1.0)
        check_choice(owner, "normalise", self.normalise, ("minmax", "zscore", "rank"))
        check_choice(owner, "cold", self.cold, ("content", "blend"))

    def _part(self, name: str) -> Recommender:
        value = getattr(self, name)
        if value is None:
            if name == "cf":
                from recsys.models.knn import ItemKNN

                return ItemKNN()
            return ContentBased()
        model: Recommender = _as_component(value, Recommender, name, type(self).__name__)
        return Recommender.from_config(model.get_config())

    def _fit(self, data: Interactions) -> None:
        cf, content = self._part("cf"), self._part("content")
        if not content.scores_cold_items:
            raise ParameterError(
                f"The 'content' model of Hybrid must score items without interactions (a content model); "
                f"{type(content).__name__} does not"
            )
        self.cf_ = cf.fit(data)
        self.content_ = content.fit(data)

    def _blend(self, cf: NDArray[np.float32], content: NDArray[np.float32]) -> NDArray[np.float32]:
        warm = np.ones(self.n_items_, dtype=bool)
        warm[self.cold_items_] = False
        a = _normalised(cf, warm, self.normalise)
        b = _normalised(content, np.ones(self.n_items_, dtype=bool), self.normalise)
        w = np.float32(self.weight)
        out = w * a + (np.float32(1) - w) * b
        cold = self.cold_items_
        if len(cold):
            if self.cold == "content":
                out[:, cold] = b[:, cold]
            else:
                floor = a[:, warm].min(axis=1, keepdims=True) if warm.any() else np.zeros((len(a), 1), np.float32)
                out[:, cold] = w * floor + (np.float32(1) - w) * b[:, cold]
        return out

    def _score(self, user_idx: NDArray[np.int32], item_idx: NDArray[np.int32] | None) -> NDArray[np.float32]:
        # Normalisation uses every item, so a candidate's score never depends on which others are asked for.
        out = self._blend(self.cf_._score(user_idx, None), self.content_._score(user_idx, None))
        return out if item_idx is None else out[:, item_idx]

    def _score_history(
        self, item_idx: NDArray[np.int32], ratings: NDArray[np.float32] | None, timestamps: NDArray[Any] | None
    ) -> NDArray[np.float32]:
        try:
            a = self.cf_._score_history(item_idx, ratings, timestamps)
            b = self.content_._score_history(item_idx, ratings, timestamps)
        except NotSupportedError as e:
            raise NotSupportedError(f"Hybrid cannot recommend from a history: {e}") from None
        return self._blend(np.asarray(a).reshape(1, -1), np.asarray(b).reshape(1, -1))[0]

    def _similar_items(self, item_idx: NDArray[np.int32]) -> NDArray[np.float32]:
        try:
            a = self.cf_._similar_items(item_idx)
            b = self.content_._similar_items(item_idx)
        except NotSupportedError as e:
            raise NotSupportedError(f"Hybrid has no item similarity: {e}") from None
        return self._blend(np.asarray(a), np.asarray(b))

    def _explain(self, user_idx: int, item_idx: int) -> Explanation:
        u = np.array([user_idx], dtype=np.int32)
        a, b = self.cf_._score(u, None)[0], self.content_._score(u, None)[0]
        return self._explain_blend(a, b, lambda m: m._explain(user_idx, item_idx), item_idx)

    def _explain_history(
        self, item_idx: NDArray[np.int32], ratings: NDArray[np.float32] | None, timestamps: NDArray[Any] | None, target: int
    ) -> Explanation:
        a = np.asarray(self.cf_._score_history(item_idx, ratings, timestamps))
        b = np.asarray(self.content_._score_history(item_idx, ratings, timestamps))
        return self._explain_blend(a, b, lambda m: m._explain_history(item_idx, ratings, timestamps, target), target)

    def _explain_blend(
        self, cf: NDArray[Any], content: NDArray[Any], explain: Callable[[Recommender], Explanation], target: int
    ) -> Explanation:
        """Each model's parts, scaled by its weight and its normalisation (see :func:`blended_explanation`);
        sources keep their model's kind, columns ``cf`` and ``content`` hold each model's share."""
        name = type(self).__name__
        warm = np.ones(self.n_items_, dtype=bool)
        warm[self.cold_items_] = False
        ma = normalising_map(cf, warm, self.normalise)
        mb = normalising_map(content, np.ones(self.n_items_, dtype=bool), self.normalise)
        if ma is None or mb is None:
            raise NotSupportedError(
                f"{name}(normalise={self.normalise!r}) cannot explain its scores: rank normalisation replaces each "
                "score by its rank among the items, which no single history item's part determines "
                "(use normalise='minmax' or 'zscore' to explain)"
            )
        score = float(self._blend(np.asarray(cf).reshape(1, -1), np.asarray(content).reshape(1, -1))[0, target])
        w = float(np.float32(self.weight))
        terms: dict[str, float] = {}
        parts = []
        if warm[target]:
            parts.append(("cf", w, self._part_explanation(self.cf_, explain, cf, ma[2], target), ma[0], ma[1]))
        elif self.cold == "blend":
            # a cold item gets the row's lowest normalised CF score
            floor = (ma[2][warm].min() - ma[0]) / ma[1] if warm.any() and ma[1] > 0 else 0.0
            terms["cf.floor"] = w * float(floor)
        content_w = 1.0 if (not warm[target] and self.cold == "content") else float(np.float32(1) - np.float32(w))
        parts.append(("content", content_w, self._part_explanation(self.content_, explain, content, mb[2], target), mb[0], mb[1]))
        return blended_explanation(parts, score, terms)

    @staticmethod
    def _part_explanation(
        model: Recommender, explain: Callable[[Recommender], Explanation], raw: NDArray[Any], filled: NDArray[Any], target: int
    ) -> Explanation:
        if not np.isfinite(raw[target]):
            return unscored(float(filled[target]))
        try:
            return explain(model)
        except NotSupportedError as e:
            raise NotSupportedError(f"Hybrid cannot explain its scores: {e}") from None


__all__ = ["ContentBased", "Hybrid"]
