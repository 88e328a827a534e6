"""Most-popular baseline."""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
from numpy.typing import NDArray

from recsys._state_spec import FLOAT_DTYPES as FLOATS
from recsys._state_spec import Array, Spec
from recsys._utils.params import check_float
from recsys.data import Interactions
from recsys.errors import DataError
from recsys.models.base import Recommender


class Popular(Recommender):
    """Recommends the items with the most training interactions.

    With ``half_life`` set, each interaction counts ``0.5 ** (age / half_life)``
    where ``age`` is the time between it and the latest training interaction,
    so recent popularity dominates.

    Parameters
    ----------
    half_life : float, optional
        In the units of the training timestamps (nanoseconds for datetimes).
        None counts every interaction once.

    Examples
    --------
    >>> import pandas as pd
    >>> from recsys import Interactions
    >>> data = Interactions.from_frame(pd.DataFrame({"user": [1, 2, 2, 3], "item": ["a", "a", "b", "c"]}))
    >>> Popular().fit(data).recommend_one(1, k=2)
    (array(['b', 'c'], dtype=object), array([1., 1.], dtype=float32))
    """

    _state_spec: ClassVar[dict[str, Spec]] = {"popularity_": Array(shape=("n_items",), dtype=FLOATS)}

    def __init__(self, half_life: float | None = None) -> None:
        self.half_life = half_life

    def _validate_params(self) -> None:
        if self.half_life is not None:
            check_float("Popular", "half_life", self.half_life, low=0.0, low_open=True)

    def _fit(self, data: Interactions) -> None:
        if self.half_life is None:
            weights = None
        else:
            if data.timestamps is None:
                raise DataError("Popular(half_life=...) needs timestamps; these interactions have none")
            age = (data.timestamps.max() - data.timestamps).astype(np.float64)
            weights = np.exp2(-age / float(self.half_life))
        self.popularity_ = np.bincount(data.item_index, weights=weights, minlength=data.n_items).astype(np.float32)

    def _score(self, user_idx: NDArray[np.int32], item_idx: NDArray[np.int32] | None) -> NDArray[np.float32]:
        s = self.popularity_ if item_idx is None else self.popularity_[item_idx]
        return np.broadcast_to(s, (len(user_idx), len(s)))

    def _score_pairs(self, user_idx: NDArray[np.int32], item_idx: NDArray[np.int32]) -> NDArray[np.float32]:
        return np.asarray(self.popularity_[item_idx], dtype=np.float32)

    def _score_history(
        self, item_idx: NDArray[np.int32], ratings: NDArray[np.float32] | None, timestamps: NDArray[Any] | None
    ) -> NDArray[np.float32]:
        return np.asarray(self.popularity_, dtype=np.float32)
