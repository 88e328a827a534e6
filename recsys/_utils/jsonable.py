"""Python values as JSON-ready values, and back: the one converter of configs, results and reports."""

from __future__ import annotations

import math
from typing import Any, Literal

import numpy as np

from recsys.errors import ParameterError


def to_jsonable(value: Any, *, nonfinite: Literal["null", "keep"] = "null", what: str = "value") -> Any:
    """``value`` made of JSON types only (dict with str keys, list, str, int, float, bool, None).

    * numpy scalars become Python scalars and numpy arrays nested lists;
    * tuples (and arrays) become lists, dict keys become str;
    * an object with ``get_config()`` (a model or an encoder inside a
      config) becomes ``{"__config__": obj.get_config()}``
      (:func:`from_jsonable` rebuilds it);
    * NaN and infinities become None (``nonfinite="null"``, strict JSON for
      results and reports) or stay floats (``"keep"``: a parameter
      that is ``inf`` must come back as ``inf``; Python's ``json`` writes it).

    Parameters
    ----------
    value : any
    nonfinite : {"null", "keep"}, default "null"
    what : str
        Names the value in the error message.

    Raises
    ------
    ParameterError
        Something that has no JSON form (a function, a set, an open file...).

    Examples
    --------
    >>> import numpy as np
    >>> to_jsonable({"k": np.int64(3), "ci": (0.5, float("nan")), 1: np.array([1.5, 2.0])})
    {'k': 3, 'ci': [0.5, None], '1': [1.5, 2.0]}
    >>> to_jsonable(float("inf"), nonfinite="keep")
    inf
    """
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, np.bool_):
        return bool(value)
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        v = float(value)
        return None if nonfinite == "null" and not math.isfinite(v) else v
    if isinstance(value, np.ndarray):
        return [to_jsonable(v, nonfinite=nonfinite, what=what) for v in value.tolist()]
    if isinstance(value, (list, tuple)):
        return [to_jsonable(v, nonfinite=nonfinite, what=what) for v in value]
    if isinstance(value, dict):
        return {str(k): to_jsonable(v, nonfinite=nonfinite, what=what) for k, v in value.items()}
    if callable(getattr(value, "get_config", None)) and not isinstance(value, type):
        return {"__config__": value.get_config()}
    raise ParameterError(f"{what} {value!r:.200} cannot be written to JSON ({type(value).__name__})")


def json_float(value: float | None) -> float | None:
    """A float for strict JSON: None for None, NaN and infinities.

    >>> json_float(float("nan")) is None, json_float(0.25)
    (True, 0.25)
    """
    return None if value is None or not math.isfinite(value) else float(value)


def from_jsonable(value: Any) -> Any:
    """The inverse of :func:`to_jsonable` for configs: ``{"__config__": ...}`` entries are built again.

    Only registered classes are built (see :mod:`recsys._utils.registry`); lists stay lists.

    >>> from recsys.content import HashingEncoder
    >>> from_jsonable({"encoder": to_jsonable(HashingEncoder(dim=8))})
    {'encoder': HashingEncoder(dim=8, idf=True, ngrams=1)}
    """
    from recsys._utils.registry import build_component

    if isinstance(value, list):
        return [from_jsonable(v) for v in value]
    if isinstance(value, dict):
        if "__config__" in value:
            return build_component(value["__config__"])
        return {k: from_jsonable(v) for k, v in value.items()}
    return value


__all__ = ["from_jsonable", "json_float", "to_jsonable"]
