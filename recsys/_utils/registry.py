"""Registry of configurable classes, so configs and artifacts never import a name they contain.

A class is registered by being defined (Recommender subclasses) or by the
``register_component`` decorator (encoders and other parts of a model's
config). Lookups accept the full ``module.Class`` path or, when unique, the
bare class name.

It also holds the artifact codecs (:class:`StateCodec`): how a saved model
stores the objects in its state that are neither arrays nor JSON values
(nested models, item indexes). The classes register their own codec, so
:mod:`recsys.persistence` imports no model and no index.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal, TypeVar

from recsys.errors import ParameterError

T = TypeVar("T", bound=type)

_CLASSES: dict[str, type] = {}
# Classes that moved to another module keep the name configs and artifacts already store:
# class -> stored name, and current path -> stored name (so both names resolve).
_STORED: dict[type, str] = {}
_MOVED: dict[str, str] = {}


def class_path(cls: type) -> str:
    """The name configs and artifacts store for ``cls``: ``module.Class``, or the name a moved class kept."""
    return _STORED.get(cls) or f"{cls.__module__}.{cls.__qualname__}"


def register(cls: T) -> T:
    """Make ``cls`` buildable from a config (``{"class": ..., "params": ...}``)."""
    _CLASSES[class_path(cls)] = cls
    return cls


def stored_as(name: str) -> Callable[[T], T]:
    """Decorator for a registered class that moved module: configs and artifacts keep naming it ``name``.

    Saved files then stay loadable by older versions and byte-identical
    across the move; the class's current ``module.Class`` resolves to it too.
    Subclasses are stored under their own path.

    Examples
    --------
    >>> @stored_as("recsys.old_home.Thing")
    ... @register
    ... class Thing:
    ...     pass
    >>> class_path(Thing), resolve(f"{__name__}.Thing") is Thing
    ('recsys.old_home.Thing', True)
    """

    def keep(cls: T) -> T:
        here = f"{cls.__module__}.{cls.__qualname__}"
        _CLASSES.pop(here, None)
        _STORED[cls] = name
        _MOVED[here] = name
        _CLASSES[name] = cls
        return cls

    return keep


register_component = register


# Classes whose modules are imported on first use (they pull in torch): bare name -> module.
LAZY_CLASSES: dict[str, str] = {
    "DeepFM": "recsys.models.deep", "DIN": "recsys.models.deep", "SASRec": "recsys.models.deep", "GRU4Rec": "recsys.models.deep",
    "ESMM": "recsys.models.deep", "MMoE": "recsys.models.deep", "PLE": "recsys.models.deep", "SharedBottom": "recsys.models.deep",
}


def _import_for(name: str) -> None:
    """Import the recsys module that defines ``name``, if it is a lazily loaded one.

    Only modules inside the ``recsys`` package are ever imported, never a module a
    config merely names elsewhere.
    """
    module = LAZY_CLASSES.get(name.rsplit(".", 1)[-1])
    if module is None and name.startswith("recsys.") and "." in name:
        candidate = name.rsplit(".", 1)[0]
        module = candidate if candidate in LAZY_CLASSES.values() or candidate.startswith("recsys.models.deep.") else None
    if module is not None:
        importlib.import_module(module)


def resolve(name: str) -> type:
    """The registered class called ``name`` (full path, or unique bare name)."""
    cls = _CLASSES.get(_MOVED.get(name, name))
    if cls is not None:
        return cls
    _import_for(name)
    cls = _CLASSES.get(_MOVED.get(name, name))
    if cls is not None:
        return cls
    matches = [c for p, c in _CLASSES.items() if p.rsplit(".", 1)[-1] == name]
    if len(matches) == 1:
        return matches[0]
    known = ", ".join(sorted({p.rsplit(".", 1)[-1] for p in _CLASSES}))
    raise ParameterError(
        f"unknown class {name!r} in a config; import the module that defines it first (known: {known})"
    )


def registered() -> dict[str, type]:
    return dict(_CLASSES)


def as_component(value: Any, expected: type, name: str, owner: str) -> Any:
    """A parameter given as an object, or as ``{"__config__": ...}`` (a config read from JSON), checked
    to be an ``expected`` instance; otherwise a ParameterError naming ``name`` and ``owner``.

    Examples
    --------
    >>> as_component(3, int, "k", "Model")
    3
    """
    if isinstance(value, dict) and "__config__" in value:
        value = build_component(value["__config__"])
    if not isinstance(value, expected):
        raise ParameterError(
            f"The {name!r} parameter of {owner} must be a {expected.__name__} (or its config). "
            f"Got {type(value).__name__} instead."
        )
    return value


def build_component(config: dict[str, Any]) -> Any:
    """Instantiate a registered class from ``{"class": ..., "params": ...}``."""
    if not isinstance(config, dict) or "class" not in config:
        raise ParameterError(f"a config needs a 'class' entry; got {config!r:.200}")
    cls = resolve(config["class"])
    from_config = getattr(cls, "from_config", None)
    if callable(from_config):
        return from_config(config)
    return cls(**config.get("params", {}))


# -- artifact codecs -------------------------------------------------------------------------


@dataclass(frozen=True)
class StateCodec:
    """How an artifact stores instances of ``cls``: as ``{tag: config, payload: parts}`` in ``state.json``.

    Attributes
    ----------
    tag : str
        The marker key of the stored description (``"__model__"``).
    cls : type
        Instances of this class (and its subclasses) are stored with this codec.
    payload : {"state", "arrays"}
        ``"state"``: the parts are learned attributes, each stored as any state
        value (arrays, id maps, nested objects...); the object is built from its
        config, then the parts are checked and restored through its
        ``_check_loaded_state``/``_restore_state`` hooks. ``"arrays"``: the parts
        are plain arrays and ``build`` makes the object from config and arrays.
    config : callable
        ``config(obj)``: the JSON config of an instance.
    parts : callable
        ``parts(obj)``: its learned attributes (``"state"``) or arrays (``"arrays"``).
    build : callable
        ``build(config, arrays)``: the object (``arrays`` is None for ``"state"``).
        Raises on an invalid config.
    what : str
        How messages name the object, with its article ("a nested model", "an item index").

    Examples
    --------
    >>> import recsys.persistence
    >>> codec_for_tag("__model__").cls.__name__
    'Recommender'
    """

    tag: str
    cls: type
    payload: Literal["state", "arrays"]
    config: Callable[[Any], Any]
    parts: Callable[[Any], Mapping[str, Any]]
    build: Callable[[Any, Any], Any]
    what: str


_CODECS: dict[str, StateCodec] = {}

# Codecs registered by importing a recsys module: tag -> module. A loader that meets a tag
# imports the module on first use, so loading works when only ``recsys.persistence`` was imported.
LAZY_CODECS: dict[str, str] = {"__model__": "recsys.models", "__itemindex__": "recsys.index"}


def register_codec(codec: StateCodec) -> StateCodec:
    """Store instances of ``codec.cls`` in artifacts with ``codec`` (one codec per tag)."""
    _CODECS[codec.tag] = codec
    return codec


def codec_for_tag(tag: str) -> StateCodec:
    """The codec of the marker key ``tag``, importing the recsys module that registers it if needed."""
    codec = _CODECS.get(tag)
    if codec is None and tag in LAZY_CODECS:
        importlib.import_module(LAZY_CODECS[tag])
        codec = _CODECS.get(tag)
    if codec is None:
        raise KeyError(tag)
    return codec


def codec_for(value: Any) -> StateCodec | None:
    """The codec whose class ``value`` is an instance of (None when no codec stores it).

    An instance exists only once its class's module was imported, and that import registered
    the codec, so no lazy import is needed here.
    """
    for codec in _CODECS.values():
        if isinstance(value, codec.cls):
            return codec
    return None


def codec_tags() -> tuple[str, ...]:
    """Every marker key a codec may use, registered or not yet imported."""
    return tuple(dict.fromkeys([*LAZY_CODECS, *_CODECS]))
