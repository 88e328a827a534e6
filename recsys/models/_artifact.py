"""How a model is rebuilt from the config an artifact holds (the model side of its artifact codec)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from recsys._utils.registry import resolve
from recsys.errors import ArtifactError

if TYPE_CHECKING:
    from recsys.models.base import Recommender


def build_saved(config: Any, arrays: Any = None) -> Recommender:
    """The unfitted model a saved config describes: every hyper-parameter present (a missing one would
    silently take its default and make another model), none unknown, all valid.

    Examples
    --------
    >>> from recsys.models import Popular
    >>> build_saved(Popular(half_life=3.0).get_config())
    Popular(half_life=3.0)
    """
    from recsys.models.base import Recommender  # imported here: base imports this module

    if not isinstance(config, dict) or set(config) != {"class", "params"} or not isinstance(config["params"], dict):
        raise ArtifactError(f"a model config must be {{'class': name, 'params': {{...}}}}; got {config!r:.120}")
    cls = resolve(config["class"]) if isinstance(config["class"], str) else None
    if not (isinstance(cls, type) and issubclass(cls, Recommender)):
        raise ArtifactError(f"{config['class']!r:.80} is not a Recommender")
    config = {"class": config["class"], "params": cls._upgrade_params(config["params"])}  # an older spelling
    missing = sorted(set(cls._param_names()) - set(config["params"]))
    if missing:
        raise ArtifactError(f"the config of {cls.__name__} lacks the parameters {missing[:5]}")
    model = Recommender.from_config(config)
    model._validate_loaded_params()
    return model
