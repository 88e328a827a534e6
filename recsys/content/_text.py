"""Item texts from an item feature table: a default description, a format template, or a function."""

from __future__ import annotations

import string
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import pandas as pd

from recsys.data import Interactions
from recsys.errors import DataError, DataTypeError, MissingColumnError, ParameterError

TextSpec = str | Callable[[dict[str, Any]], str] | None

_LIST_TYPES = (list, tuple, np.ndarray, set, frozenset)


def _is_missing(value: Any) -> bool:
    if value is None:
        return True
    if isinstance(value, _LIST_TYPES):
        return len(value) == 0
    try:
        return bool(pd.isna(value))
    except (TypeError, ValueError):
        return False


def _fmt(value: Any) -> str:
    """One feature value as text: lists joined by ", ", whole floats without ".0", missing as ""."""
    if _is_missing(value):
        return ""
    if isinstance(value, _LIST_TYPES):
        return ", ".join(_fmt(v) for v in value if not _is_missing(v))
    if isinstance(value, (float, np.floating)) and float(value).is_integer():
        return str(int(value))
    return str(value)


def _default_text(row: Mapping[str, Any], kinds: Mapping[str, str]) -> str:
    """Text columns verbatim first, then ``column: value`` for the others; empty values skipped."""
    parts = [_fmt(row[c]) for c in row if kinds.get(c) == "text"]
    parts += [f"{c}: {_fmt(row[c])}" for c in row if kinds.get(c) != "text" and _fmt(row[c])]
    return ". ".join(p for p in parts if p)


def _template_fields(template: str) -> list[str]:
    try:
        parsed = list(string.Formatter().parse(template))
    except ValueError as e:
        raise ParameterError(f"the text template {template!r} is not a valid format string: {e}") from None
    fields = []
    for _, name, _, _ in parsed:
        if name is None:
            continue
        if name == "" or name.isdigit() or "." in name or "[" in name:
            raise ParameterError(
                f"the text template {template!r} must use named fields such as {{title}}; got {{{name}}}"
            )
        fields.append(name)
    return fields


def item_texts(
    features: Interactions | pd.DataFrame,
    text: TextSpec = None,
    *,
    kinds: Mapping[str, str] | None = None,
) -> list[str]:
    """One text per item, built from an item feature table.

    Parameters
    ----------
    features : Interactions or pandas.DataFrame
        An :class:`~recsys.Interactions` (its ``item_features``, one row per
        internal item index, with their kinds) or a frame of feature columns.
    text : None, str or callable
        ``None``: the default description, every text column verbatim followed
        by ``column: value`` for the other columns (lists joined by ", ",
        missing values left out), joined by ". "; for MovieLens:
        ``"Toy Story (1995). year: 1995. genres: Animation, Children's, Comedy"``
        (plus ``tags: ...`` for releases with tags). A str: a format template
        over column names, e.g. ``"{title}. Genres: {genres}"`` (lists joined by
        ", ", missing values as ""). A callable: called with each row as a
        dict ``{column: value}`` and returning a str.
    kinds : mapping, optional
        Column kinds for the default description when ``features`` is a frame
        (``"text"`` columns go first); default: str/object columns of strings
        are text.

    Returns
    -------
    list of str
        Row ``i`` is the text of row ``i`` (item index ``i``); an item without
        any feature value gets ``""``.

    Raises
    ------
    DataError
        The data has no item features.
    MissingColumnError
        The template names a column the table does not have.
    ParameterError
        ``text`` is not None, a template or a callable.
    DataTypeError
        The callable returned something other than a str.

    Examples
    --------
    >>> import pandas as pd
    >>> f = pd.DataFrame({"title": ["Heat (1995)", "Up"], "genres": [["Crime", "Drama"], []], "year": [1995, None]})
    >>> item_texts(f)
    ['Heat (1995). genres: Crime, Drama. year: 1995', 'Up']
    >>> item_texts(f, "{title} [{genres}]")
    ['Heat (1995) [Crime, Drama]', 'Up []']
    >>> item_texts(f, lambda row: row["title"].upper())
    ['HEAT (1995)', 'UP']
    """
    if isinstance(features, Interactions):
        if features.item_features is None:
            raise DataError(
                "content models need item features: build the Interactions with item_features= "
                "(a frame with an item column plus text, category or list columns)"
            )
        frame = features.item_features
        kinds = dict(features.item_feature_kinds) if kinds is None else kinds
    elif isinstance(features, pd.DataFrame):
        frame = features
    else:
        raise DataTypeError(f"item_texts expects Interactions or a pandas DataFrame; got {type(features).__name__}")
    if kinds is None:
        kinds = {
            c: "text"
            for c in frame.columns
            if frame[c].dtype.kind in "OUS" or isinstance(frame[c].dtype, pd.StringDtype)
            if all(isinstance(v, str) for v in frame[c].dropna().head(100))
        }
    columns = [str(c) for c in frame.columns]
    values = [frame[c].to_numpy(dtype=object) for c in frame.columns]
    rows = (dict(zip(columns, vals)) for vals in zip(*values)) if values else ({} for _ in range(len(frame)))
    if text is None:
        return [_default_text(r, kinds) for r in rows]
    if isinstance(text, str):
        fields = _template_fields(text)
        missing = [f for f in fields if f not in columns]
        if missing:
            raise MissingColumnError(
                f"the text template {text!r} names column {missing[0]!r}, which the item features lack "
                f"(columns: {', '.join(columns) or 'none'})"
            )
        return [text.format_map({f: _fmt(r[f]) for f in fields}) for r in rows]
    if callable(text):
        out = []
        for i, r in enumerate(rows):
            t = text(r)
            if not isinstance(t, str):
                raise DataTypeError(f"the text function must return a str; for item row {i} it returned {type(t).__name__}")
            out.append(t)
        return out
    raise ParameterError(f"text must be None, a format template (str) or a function of a row; got {type(text).__name__}")


__all__ = ["TextSpec", "item_texts"]
