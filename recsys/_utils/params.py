"""Hyper-parameter checks with messages that name the parameter, its owner, the rule and the value."""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

import numpy as np

from recsys.errors import ParameterError


def _fail(owner: str, name: str, rule: str, value: Any) -> ParameterError:
    return ParameterError(f"The {name!r} parameter of {owner} must be {rule}. Got {value!r} instead.")


def check_int(owner: str, name: str, value: Any, *, low: int | None = None, high: int | None = None) -> int:
    """An int (not bool) in ``[low, high]``.

    >>> check_int("BPR", "n_factors", 0, low=1)
    Traceback (most recent call last):
    ...
    recsys.errors.ParameterError: The 'n_factors' parameter of BPR must be an int >= 1. Got 0 instead.
    """
    if low is not None and high is not None:
        rule = f"an int in [{low}, {high}]"
    else:
        rule = "an int" + (f" >= {low}" if low is not None else "") + (f" <= {high}" if high is not None else "")
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
        raise _fail(owner, name, rule, value)
    if (low is not None and value < low) or (high is not None and value > high):
        raise _fail(owner, name, rule, value)
    return int(value)


def check_float(
    owner: str,
    name: str,
    value: Any,
    *,
    low: float | None = None,
    high: float | None = None,
    low_open: bool = False,
    high_open: bool = False,
) -> float:
    """A finite real number in the given (open or closed) range.

    >>> check_float("EASE", "reg", -1.0, low=0.0, low_open=True)
    Traceback (most recent call last):
    ...
    recsys.errors.ParameterError: The 'reg' parameter of EASE must be a float > 0.0. Got -1.0 instead.
    """
    parts = []
    if low is not None:
        parts.append(f"{'>' if low_open else '>='} {low}")
    if high is not None:
        parts.append(f"{'<' if high_open else '<='} {high}")
    rule = "a float" + (" " + " and ".join(parts) if parts else "")
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise _fail(owner, name, rule, value)
    v = float(value)
    if not np.isfinite(v):
        raise _fail(owner, name, rule.replace("a float", "a finite float", 1), value)
    if low is not None and (v < low or (low_open and v == low)):
        raise _fail(owner, name, rule, value)
    if high is not None and (v > high or (high_open and v == high)):
        raise _fail(owner, name, rule, value)
    return v


def check_choice(owner: str, name: str, value: Any, choices: Collection[Any]) -> Any:
    """One of ``choices``.

    >>> check_choice("ALS", "weighting", "x", ["binary", "bm25"])
    Traceback (most recent call last):
    ...
    recsys.errors.ParameterError: The 'weighting' parameter of ALS must be one of 'binary', 'bm25'. Got 'x' instead.
    """
    try:
        ok = bool(value in choices)
    except (TypeError, ValueError):  # an array or an object with odd comparisons
        ok = False
    if not ok:
        raise _fail(owner, name, "one of " + ", ".join(repr(c) for c in choices), value)
    return value


def check_seed(owner: str, name: str, value: Any) -> int | None:
    """None or an int >= 0 (a random seed)."""
    if value is None:
        return None
    return check_int(owner, name, value, low=0)
