"""Blend: a score-level ensemble of several recommenders on per-user normalised scores."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar

import numpy as np
from numpy.typing import NDArray

from recsys._state_spec import Model, Spec, Where
from recsys._utils.params import check_choice
from recsys._utils.registry import as_component
from recsys.data import Interactions
from recsys.errors import ArtifactError, NotSupportedError, ParameterError
from recsys.models._explain import Explanation, blended_explanation, unscored
from recsys.models._normalise import normalised, normalising_map
from recsys.models.base import Recommender


def _model(value: Any, i: int) -> Recommender:
    model: Recommender = as_component(value, Recommender, f"models[{i}]", "Blend")
    return model


class Blend(Recommender):
    """The weighted sum of several models' scores, each normalised per user over the items with
    training interactions.

    Models from different families make different mistakes (a factor model
    and an item-item model, say); on ML-100K ALS blended with SessionEASE is
    the library's most accurate top-N recommender (benchmarks/results/ml-100k).
    Every model is fitted on the same data (fresh copies; the given objects are
    not changed). Items without training interactions are never recommended.
    A pair's score never depends on which other items are asked for: the
    normalisation always uses every item with interactions. Tune ``weights``
    on a validation split (``recsys tune blend``).

    Parameters
    ----------
    models : list of Recommender, optional
        At least two. Default ``[ALS(n_factors=64, weighting="bm25"), SessionEASE()]``.
    weights : list of float >= 0, optional
        One per model, not all zero (only their ratios matter). Default: equal.
    normalise : {"zscore", "minmax", "rank"}, default "zscore"
        How each model's scores are put on a common scale per user (see Hybrid).

    :meth:`explain` gives each model's parts scaled by its weight over its
    normalisation scale, merged per history item (or per neighbour user, kind
    ``"user"``: sources keep the kind their model gives them), with one
    column per model (its class name) holding its share; each model's terms
    and the normalisation's offset are terms ``"<model>.<term>"``. With
    ``normalise="rank"`` scores cannot be split (NotSupportedError).

    Attributes
    ----------
    models_ : list of Recommender
        The fitted models.

    Raises
    ------
    ParameterError
        (at fit) Fewer than two models, or weights that do not match them.

    Examples
    --------
    >>> from recsys.models import EASE, ItemKNN
    >>> from recsys.testing import tiny_interactions
    >>> model = Blend([ItemKNN(k=10), EASE(reg=10.0)], weights=[0.3, 0.7]).fit(tiny_interactions())
    >>> ids, scores = model.recommend_one(0, k=3)
    >>> len(ids), bool(scores[0] >= scores[-1])
    (3, True)
    """

    _state_spec: ClassVar[dict[str, Spec]] = {"models_": Model(many=True)}

    def __init__(
        self, models: list[Recommender] | None = None, weights: list[float] | None = None, normalise: str = "zscore"
    ) -> None:
        self.models = models
        self.weights = weights
        self.normalise = normalise

    def _parts(self) -> list[Recommender]:
        if self.models is None:
            from recsys.models.als import ALS
            from recsys.models.session_ease import SessionEASE

            return [ALS(n_factors=64, weighting="bm25"), SessionEASE()]
        return [Recommender.from_config(_model(m, i).get_config()) for i, m in enumerate(self.models)]

    def _validate_params(self) -> None:
        if self.models is not None:
            if isinstance(self.models, (str, bytes)) or not isinstance(self.models, (list, tuple)) or len(self.models) < 2:
                raise ParameterError(f"The 'models' parameter of Blend must be a list of at least two models. Got {self.models!r} instead.")
            for i, m in enumerate(self.models):
                _model(m, i)
        n = 2 if self.models is None else len(self.models)
        if self.weights is not None:
            w = self.weights
            ok = isinstance(w, (list, tuple)) and len(w) == n and all(
                isinstance(x, (int, float)) and not isinstance(x, bool) and np.isfinite(x) and x >= 0 for x in w
            )
            if not ok or sum(float(x) for x in w) <= 0:
                raise ParameterError(
                    f"The 'weights' parameter of Blend must be {n} non-negative numbers, not all zero "
                    f"(one per model). Got {w!r} instead."
                )
        check_choice("Blend", "normalise", self.normalise, ("zscore", "minmax", "rank"))

    def _check_loaded_state(self, state: dict[str, Any], where: Where, dims: dict[str, int] | None = None) -> dict[str, int]:
        bound = super()._check_loaded_state(state, where, dims)
        n = 2 if self.models is None else len(self.models)
        if len(state["models_"]) != n:  # one weight per model: zip would silently drop the extra ones
            raise ArtifactError(f"{where('models_')}: field 'models_' holds {len(state['models_'])} models; the config has {n}")
        return bound

    def _weights(self) -> NDArray[np.float64]:
        n = len(self.models_)
        w = np.ones(n) if self.weights is None else np.asarray(self.weights, dtype=np.float64)
        return w / w.sum()

    def _fit(self, data: Interactions) -> None:
        self.models_ = [m.fit(data) for m in self._parts()]

    def _blend(self, parts: list[NDArray[Any]]) -> NDArray[np.float32]:
        warm = np.ones(self.n_items_, dtype=bool)
        warm[self.cold_items_] = False
        out = np.zeros(np.asarray(parts[0]).shape, dtype=np.float64)
        for w, s in zip(self._weights(), parts):
            out += w * normalised(np.asarray(s, dtype=np.float32), warm, self.normalise)
        return out.astype(np.float32)

    def _score(self, user_idx: NDArray[np.int32], item_idx: NDArray[np.int32] | None) -> NDArray[np.float32]:
        out = self._blend([m._score(user_idx, None) for m in self.models_])
        return out if item_idx is None else out[:, item_idx]

    def _score_history(
        self, item_idx: NDArray[np.int32], ratings: NDArray[np.float32] | None, timestamps: NDArray[Any] | None
    ) -> NDArray[np.float32]:
        try:
            parts = [np.asarray(m._score_history(item_idx, ratings, timestamps)).reshape(1, -1) for m in self.models_]
        except NotSupportedError as e:
            raise NotSupportedError(f"Blend cannot recommend from a history: {e}") from None
        return self._blend(parts)[0]

    def _similar_items(self, item_idx: NDArray[np.int32]) -> NDArray[np.float32]:
        try:
            parts = [np.asarray(m._similar_items(item_idx)) for m in self.models_]
        except NotSupportedError as e:
            raise NotSupportedError(f"Blend has no item similarity: {e}") from None
        return self._blend(parts)

    def _explain(self, user_idx: int, item_idx: int) -> Explanation:
        u = np.array([user_idx], dtype=np.int32)
        rows = [np.asarray(m._score(u, None))[0] for m in self.models_]
        return self._explain_blend(rows, lambda m: m._explain(user_idx, item_idx), item_idx)

    def _explain_history(
        self, item_idx: NDArray[np.int32], ratings: NDArray[np.float32] | None, timestamps: NDArray[Any] | None, target: int
    ) -> Explanation:
        rows = [np.asarray(m._score_history(item_idx, ratings, timestamps)).ravel() for m in self.models_]
        return self._explain_blend(rows, lambda m: m._explain_history(item_idx, ratings, timestamps, target), target)

    def _names(self) -> list[str]:
        """Each model's name in explanations: its class, with its position when two share one."""
        names = [type(m).__name__ for m in self.models_]
        return [f"{n}[{i}]" if names.count(n) > 1 else n for i, n in enumerate(names)]

    def _explain_blend(self, rows: list[NDArray[Any]], explain: Callable[[Recommender], Explanation], target: int) -> Explanation:
        """Each model's parts, scaled by its weight and its normalisation (see
        :func:`~recsys.models._explain.blended_explanation`): one row per history item (or
        neighbour user, kind ``"user"``), one column per model with its share."""
        warm = np.ones(self.n_items_, dtype=bool)
        warm[self.cold_items_] = False
        parts = []
        for name, w, model, row in zip(self._names(), self._weights(), self.models_, rows):
            mapping = normalising_map(row, warm, self.normalise)
            if mapping is None:
                raise NotSupportedError(
                    f"Blend(normalise={self.normalise!r}) cannot explain its scores: rank normalisation replaces each "
                    "score by its rank among the items, which no single history item's part determines "
                    "(use normalise='zscore' or 'minmax' to explain)"
                )
            shift, scale, filled = mapping
            if np.isfinite(row[target]):
                try:
                    exp = explain(model)
                except NotSupportedError as e:
                    raise NotSupportedError(f"Blend cannot explain its scores: {e}") from None
            else:
                exp = unscored(float(filled[target]))
            parts.append((name, float(w), exp, shift, scale))
        score = float(self._blend([r.reshape(1, -1) for r in rows])[0, target])
        return blended_explanation(parts, score)


__all__ = ["Blend"]
