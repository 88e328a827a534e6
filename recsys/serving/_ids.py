"""External ids arriving over HTTP (query strings are text, JSON has ints and strings) -> the model's id type.

The parsing itself is the data layer's (:class:`recsys.data.IdParser`, shared with the command line);
this module keeps its old names and adds the way back to JSON.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from recsys.data._id_text import IdParser, int64_text


def to_json_ids(ids: Any) -> list[Any]:
    """Numpy ids as JSON-ready Python ints and strs.

    Examples
    --------
    >>> to_json_ids(np.array([3, 1], dtype=np.int64)), to_json_ids(np.array(["a", 2], dtype=object))
    ([3, 1], ['a', 2])
    """
    return np.asarray(ids).tolist()  # type: ignore[no-any-return]


__all__ = ["IdParser", "int64_text", "to_json_ids"]
