"""Ids written as text or JSON (a query string, a JSON body, a command line) -> the ids of one :class:`IdMap`.

Text cannot say whether ``"42"`` is the integer 42 or the string "42"; the id map can. Used by the
HTTP service (query strings and JSON bodies) and the command line (tokens), so both read ids alike.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

import numpy as np

from recsys.data._idmap import IdMap
from recsys.errors import DataError, ParameterError

_INT_RE = re.compile(r"-?[0-9]{1,19}")
_I64 = np.iinfo(np.int64)


def int64_text(text: str) -> int | None:
    """``text`` as an int64 when it is exactly an optional minus and ASCII digits, else None.

    Examples
    --------
    >>> int64_text("-42"), int64_text("4.2"), int64_text(" 42"), int64_text("99999999999999999999")
    (-42, None, None, None)
    """
    if not _INT_RE.fullmatch(text):
        return None
    v = int(text)
    return v if _I64.min <= v <= _I64.max else None


class IdParser:
    """Maps ids given as text or JSON values to the ids of one :class:`~recsys.IdMap`.

    * integer maps: ``"42"`` and ``42`` mean the id 42; text that is not an
      integer (``"4.2"``, ``"abc"``, ``" 42"``) stays text, so it is reported
      as unknown (or refused, with ``strict=True``);
    * text maps: ``42`` and ``"42"`` both mean the id ``"42"``;
    * mixed maps (ints and strs, e.g. after a partial fit): an id present as
      given wins, then its other form (``"42"`` -> 42, 42 -> ``"42"``).

    Parameters
    ----------
    idmap : IdMap
        The ids to read against (a model's ``users_`` or ``items_``).

    Examples
    --------
    >>> IdParser(IdMap([1, 2, 3])).one("2"), IdParser(IdMap(["a", "7"])).one(7)
    (2, '7')
    >>> IdParser(IdMap([1, "1", "x"])).one("1"), IdParser(IdMap([1, "x"])).one("1")
    ('1', 1)
    >>> IdParser(IdMap([10, 20])).many(["10", "30", "x"])  # unknown ids come back as given
    [10, 30, 'x']
    """

    def __init__(self, idmap: IdMap) -> None:
        if not isinstance(idmap, IdMap):
            raise ParameterError(
                f"The 'idmap' parameter of IdParser must be an IdMap (e.g. a model's users_ or items_). Got {type(idmap).__name__} instead."
            )
        self.idmap = idmap
        ids = idmap.ids
        if ids.dtype.kind in "iu":
            self.kind = "int"
        elif all(isinstance(x, str) for x in ids):
            self.kind = "str"
        else:
            self.kind = "mixed"

    def one(self, value: Any) -> Any:
        """The map's id for one given id (unknown ids come back as given, to be reported)."""
        if isinstance(value, bool):
            return value  # never an id; reported as unknown
        if self.kind == "int":
            if isinstance(value, str):
                v = int64_text(value)
                return value if v is None else v
            return value
        if self.kind == "str":
            return str(value) if isinstance(value, int) else value
        if value in self.idmap:
            return value
        if isinstance(value, str):
            v = int64_text(value)
            return value if v is None or v not in self.idmap else v
        if isinstance(value, int) and str(value) in self.idmap:
            return str(value)
        return value

    def many(self, values: Sequence[Any], *, strict: bool = False) -> list[Any]:
        """:meth:`one` for each id, as a list (the model's lookups keep ints and strs apart).

        Parameters
        ----------
        values : sequence
            Ids as text (query strings, command-line tokens) or JSON values.
        strict : bool, default False
            Refuse text that cannot be an id of an integer map (``"abc"``, ``"4.2"``)
            instead of keeping it to be reported as unknown.

        Raises
        ------
        DataError
            With ``strict=True``: the map's ids are integers and a value is text that is
            not an integer; the message names the first such value.

        Examples
        --------
        >>> IdParser(IdMap([1, 2])).many(["1", "abc"], strict=True)
        Traceback (most recent call last):
        ...
        recsys.errors.DataError: the model's ids are integers; got 'abc'
        """
        out = [self.one(v) for v in values]
        if strict and self.kind == "int":
            bad = next((v for v in out if isinstance(v, str)), None)
            if bad is not None:
                raise DataError(f"the model's ids are integers; got {bad!r}")
        return out


__all__ = ["IdParser", "int64_text"]
