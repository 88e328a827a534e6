"""Hyper-parameters: checks whose messages name the parameter, its owner, the rule and the value, and the
parameter/config mixin of models and encoders."""

from __future__ import annotations

import inspect
from collections.abc import Collection
from typing import Any, TypeVar

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


def check_float_or_auto(owner: str, name: str, value: Any, *, low: float, low_open: bool = False) -> float | str:
    """``"auto"`` (a value the model derives from the data at fit time) or a finite float above ``low``.

    >>> check_float_or_auto("EASE", "reg", "big", low=0.0, low_open=True)
    Traceback (most recent call last):
    ...
    recsys.errors.ParameterError: The 'reg' parameter of EASE must be a float > 0.0 or 'auto'. Got 'big' instead.
    """
    if isinstance(value, str) and value == "auto":
        return value
    if isinstance(value, str):
        raise _fail(owner, name, f"a float {'>' if low_open else '>='} {low} or 'auto'", value)
    return check_float(owner, name, value, low=low, low_open=low_open)  # any other value: the numeric rule


def check_choice(owner: str, name: str, value: Any, choices: Collection[Any]) -> Any:
    """One of ``choices``.

    >>> check_choice("ALS", "values", "x", ["binary", "rating"])
    Traceback (most recent call last):
    ...
    recsys.errors.ParameterError: The 'values' parameter of ALS must be one of 'binary', 'rating'. Got 'x' instead.
    """
    try:
        ok = bool(value in choices)
    except (TypeError, ValueError):  # an array or an object with odd comparisons
        ok = False
    if not ok:
        raise _fail(owner, name, "one of " + ", ".join(repr(c) for c in choices), value)
    return value


def check_bool(owner: str, name: str, value: Any, *, optional: bool = False) -> bool | None:
    """A bool (with ``optional``: or None).

    >>> check_bool("ALS", "show_progress", 1, optional=True)
    Traceback (most recent call last):
    ...
    recsys.errors.ParameterError: The 'show_progress' parameter of ALS must be a bool or None. Got 1 instead.
    """
    if optional and value is None:
        return None
    if not isinstance(value, bool):
        raise _fail(owner, name, "a bool or None" if optional else "a bool", value)
    return value


def check_seed(owner: str, name: str, value: Any) -> int | None:
    """None or an int >= 0 (a random seed)."""
    if value is None:
        return None
    return check_int(owner, name, value, low=0)


# -- the parameter machinery of models and encoders ----------------------------------------


class ParamsMixin:
    """scikit-learn-style parameters read from the ``__init__`` signature, and their JSON config.

    A class stores each ``__init__`` argument under its own name;
    :meth:`get_params`, :meth:`set_params`, :meth:`get_config` and ``repr``
    follow from that. Shared by :class:`recsys.models.base.Recommender` and
    :class:`recsys.content.TextEncoder`.

    Examples
    --------
    >>> class Demo(ParamsMixin):
    ...     def __init__(self, k: int = 10, *, name: str = "x") -> None:
    ...         self.k, self.name = k, name
    >>> Demo(k=3).set_params(name="y")
    Demo(k=3, name='y')
    >>> Demo().get_config()["params"]
    {'k': 10, 'name': 'x'}
    """

    @classmethod
    def _param_names(cls) -> list[str]:
        sig = inspect.signature(cls.__init__)
        return [
            p.name
            for p in sig.parameters.values()
            if p.name != "self" and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)
        ]

    @classmethod
    def _upgrade_params(cls, params: dict[str, Any]) -> dict[str, Any]:
        """Parameters saved by an older version in today's spelling (identity unless a class renamed one).

        Applied to configs and saved artifacts before the class is built; a
        direct call with an old spelling is refused by validation instead.
        """
        return params

    def get_params(self) -> dict[str, Any]:
        """Parameters, read from the ``__init__`` signature."""
        return {name: getattr(self, name) for name in self._param_names()}

    def set_params(self: P, **params: Any) -> P:
        """Set parameters (validated when next used); returns ``self``."""
        valid = self._param_names()
        for name, value in params.items():
            if name not in valid:
                raise ParameterError(
                    f"{type(self).__name__} has no parameter {name!r}; valid parameters: {', '.join(valid)}"
                )
            setattr(self, name, value)
        return self

    def get_config(self) -> dict[str, Any]:
        """``{"class": ..., "params": ...}``, JSON-serialisable; the class's ``from_config`` rebuilds it."""
        from recsys._utils.jsonable import to_jsonable
        from recsys._utils.registry import class_path

        owner = type(self).__name__
        return {"class": class_path(type(self)), "params": to_jsonable(self.get_params(), nonfinite="keep", what=f"a parameter value of {owner}")}

    @staticmethod
    def _build_from_config(config: Any, base: type, what: str) -> Any:
        """An instance of the registered subclass of ``base`` a config names; nothing it names is imported."""
        from recsys._utils.jsonable import from_jsonable
        from recsys._utils.registry import resolve

        if not isinstance(config, dict) or "class" not in config:
            raise ParameterError(f"{what} config needs a 'class' entry; got {config!r:.200}")
        target = resolve(config["class"])
        if not (isinstance(target, type) and issubclass(target, base) and issubclass(target, ParamsMixin)):
            raise ParameterError(f"{config['class']!r} is not a {base.__name__}")
        params = config.get("params") or {}
        if not isinstance(params, dict):
            raise ParameterError(f"the 'params' of {what} config must be a dict; got {params!r:.200}")
        params = target._upgrade_params({k: from_jsonable(v) for k, v in params.items()})
        try:
            return target(**params)
        except TypeError as e:
            raise ParameterError(f"config for {target.__name__} does not match its parameters: {e}") from None

    def __repr__(self) -> str:
        params = ", ".join(f"{k}={v!r}" for k, v in self.get_params().items())
        return f"{type(self).__name__}({params})"


P = TypeVar("P", bound=ParamsMixin)
