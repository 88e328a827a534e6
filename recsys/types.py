"""Named types of the public API: what an id, a list of ids and a frame may be.

They document what a signature accepts (every function still checks its input
at run time and names the argument when it is wrong) and let type checkers
catch a frame passed where ids belong.

Examples
--------
>>> from recsys.types import Id, IdSequence
>>> def first(ids: IdSequence) -> Id:
...     return list(ids)[0]
>>> first(["ann", "bob"])
'ann'
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, ForwardRef, TypeAlias

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike, NDArray

if TYPE_CHECKING:
    import polars as pl

    from recsys.data import Interactions

    _PlSeries: TypeAlias = pl.Series
    _PlDataFrame: TypeAlias = pl.DataFrame
    _PlLazyFrame: TypeAlias = pl.LazyFrame
    _Interactions: TypeAlias = Interactions
else:
    # Importing polars costs half a second, so it is imported only where a polars frame is read; at run
    # time the names resolve (typing.get_type_hints) once polars has been imported.
    _PlSeries = ForwardRef("Series", module="polars")
    _PlDataFrame = ForwardRef("DataFrame", module="polars")
    _PlLazyFrame = ForwardRef("LazyFrame", module="polars")
    _Interactions = ForwardRef("Interactions", module="recsys.data")  # recsys.data imports this module

#: One external user or item id: an integer or a string (numpy scalars included).
Id: TypeAlias = int | str | np.integer[Any]

#: Several ids: a list or tuple, a numpy array, or a pandas / polars Series or Index.
IdSequence: TypeAlias = Sequence[Id] | NDArray[Any] | pd.Series | pd.Index | _PlSeries

#: One id or several (``recommend`` takes either).
Ids: TypeAlias = Id | IdSequence

#: A table of rows: a pandas or polars DataFrame (a polars LazyFrame is collected first).
FrameLike: TypeAlias = pd.DataFrame | _PlDataFrame | _PlLazyFrame

#: Interactions, or a frame with ``user`` and ``item`` columns (and ``rating`` when it has one).
InteractionsLike: TypeAlias = _Interactions | FrameLike

__all__ = ["ArrayLike", "FrameLike", "Id", "IdSequence", "Ids", "InteractionsLike"]
