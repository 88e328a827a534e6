"""External ids arriving over HTTP (query strings are text, JSON has ints and strings) -> the model's id type."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

import numpy as np

from recsys.data import IdMap

_INT_RE = re.compile(r"-?[0-9]{1,19}")
_I64 = np.iinfo(np.int64)


def _as_int(text: str) -> int | None:
    """``text`` as an int64 when it is exactly an optional minus and ASCII digits, else None."""
    if not _INT_RE.fullmatch(text):
        return None
    v = int(text)
    return v if _I64.min <= v <= _I64.max else None


class IdParser:
    """Maps ids from a request to the ids of one :class:`~recsys.IdMap`.

    * integer maps: ``"42"`` and ``42`` mean the id 42; text that is not an
      integer (``"4.2"``, ``"abc"``, ``" 42"``) stays text, so it is reported
      as unknown;
    * text maps: ``42`` and ``"42"`` both mean the id ``"42"``;
    * mixed maps (ints and strs, e.g. after a partial fit): an id present as
      given wins, then its other form (``"42"`` -> 42, 42 -> ``"42"``).

    Examples
    --------
    >>> IdParser(IdMap([1, 2, 3])).one("2"), IdParser(IdMap(["a", "7"])).one(7)
    (2, '7')
    >>> IdParser(IdMap([1, "1", "x"])).one("1"), IdParser(IdMap([1, "x"])).one("1")
    ('1', 1)
    """

    def __init__(self, idmap: IdMap) -> None:
        self.idmap = idmap
        ids = idmap.ids
        if ids.dtype.kind in "iu":
            self.kind = "int"
        elif all(isinstance(x, str) for x in ids):
            self.kind = "str"
        else:
            self.kind = "mixed"

    def one(self, value: Any) -> Any:
        """The model id for one request id (unknown ids come back as given, to be reported)."""
        if isinstance(value, bool):
            return value  # never an id; reported as unknown
        if self.kind == "int":
            if isinstance(value, str):
                v = _as_int(value)
                return value if v is None else v
            return value
        if self.kind == "str":
            return str(value) if isinstance(value, int) else value
        if value in self.idmap:
            return value
        if isinstance(value, str):
            v = _as_int(value)
            return value if v is None or v not in self.idmap else v
        if isinstance(value, int) and str(value) in self.idmap:
            return str(value)
        return value

    def many(self, values: Sequence[Any]) -> list[Any]:
        """:meth:`one` for each id, as a list (the model's lookups keep ints and strs apart)."""
        return [self.one(v) for v in values]


def to_json_ids(ids: Any) -> list[Any]:
    """Numpy ids as JSON-ready Python ints and strs."""
    return np.asarray(ids).tolist()  # type: ignore[no-any-return]


__all__ = ["IdParser", "to_json_ids"]
