"""Models by their CLI name (the registry in :mod:`recsys.models._registry`), built with parameters, and timed."""

from __future__ import annotations

import argparse
import time
from typing import Any

from recsys.cli._errors import CLIError, UsageError


def add_model_args(p: argparse.ArgumentParser) -> None:
    from recsys.models._registry import MODELS

    g = p.add_argument_group("model")
    g.add_argument("--model", required=True, metavar="NAME", help=f"one of {', '.join(MODELS)}")
    g.add_argument("--param", action="append", metavar="NAME=VALUE", help="a hyper-parameter, e.g. k=100 or cf.k=50 (repeatable)")


def build_model(name: str, params: dict[str, Any], n_items: int) -> Any:
    """The registry model ``name`` with ``params`` applied; one-line errors when it cannot be built."""
    from recsys.models import _registry
    from recsys.tuning import apply_params

    if name not in _registry.MODELS:
        raise UsageError(f"unknown model {name!r}; valid: {', '.join(_registry.MODELS)}")
    try:
        model = _registry.build(name, n_items=n_items)
    except _registry.Skip as e:
        raise CLIError(f"{name} is not available here: {e}") from None
    if params:
        model = type(model).from_config(apply_params(model.get_config(), params))
    return model


class TimedModel:
    """Forwards to a model, timing ``recommend``."""

    def __init__(self, model: Any, train: Any, on_recommended: Any = None) -> None:
        self._model = model
        self._done = on_recommended
        self.seconds = 0.0

    def recommend(self, *args: Any, **kwargs: Any) -> Any:
        t0 = time.perf_counter()
        out = self._model.recommend(*args, **kwargs)
        self.seconds += time.perf_counter() - t0
        if self._done is not None:
            self._done()
        return out

    def __getattr__(self, name: str) -> Any:
        return getattr(self._model, name)
