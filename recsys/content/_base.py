"""The text-encoder interface shared by every content encoder, and the optional-extra check."""

from __future__ import annotations

import importlib.util
import inspect
import json
from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import Any, TypeVar

import numpy as np
from numpy.typing import NDArray

from recsys._utils.params import ParamsMixin
from recsys._utils.registry import register_component
from recsys.errors import DataError, DataTypeError, MissingDependencyError, RecsysError

E = TypeVar("E", bound="TextEncoder")

EXTRA_HINT = 'pip install "recsys[content]"'


def require_module(module: str, owner: str) -> None:
    """Raise :class:`MissingDependencyError` naming the extra when ``module`` cannot be imported.

    Only looks the module up (``importlib.util.find_spec``); nothing is imported.

    Examples
    --------
    >>> require_module("numpy", "demo")
    >>> require_module("no_such_module_xyz", "Demo")
    Traceback (most recent call last):
    ...
    recsys.errors.MissingDependencyError: Demo needs the optional dependency 'no_such_module_xyz', which is not installed. Install the content extra: pip install "recsys[content]"
    """
    try:
        found = importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        found = False
    if not found:
        raise MissingDependencyError(
            f"{owner} needs the optional dependency {module!r}, which is not installed. "
            f"Install the content extra: {EXTRA_HINT}"
        )


def check_texts(texts: Any, where: str) -> list[str]:
    """``texts`` as a list of str; anything else is an error naming the first bad entry."""
    if isinstance(texts, (str, bytes)):
        raise DataTypeError(f"{where} expects a sequence of str, not a single {type(texts).__name__}; wrap it in a list")
    if isinstance(texts, np.ndarray):
        texts = texts.tolist()
    if not isinstance(texts, Sequence) and not hasattr(texts, "__iter__"):
        raise DataTypeError(f"{where} expects a sequence of str; got {type(texts).__name__}")
    out = list(texts)
    for i, t in enumerate(out):
        if not isinstance(t, str):
            raise DataTypeError(f"{where} expects a sequence of str; entry {i} is {t!r} ({type(t).__name__})")
    return out


class TextEncoder(ParamsMixin, ABC):
    """Turns texts into dense float32 vectors: ``fit(texts)`` (where needed), then ``encode(texts)``.

    Subclasses store their parameters in ``__init__`` (keyword arguments,
    read back by :meth:`get_params`), learn in ``_fit`` if they learn at all,
    and implement ``_encode`` on non-empty texts. Empty or whitespace-only
    texts always encode to the zero vector (no information, cosine 0 with
    everything). Encoders are configuration values: :meth:`get_config` /
    :meth:`from_config` round-trip them through JSON (so a model's config
    can hold one), and two encoders with the same class and parameters
    compare equal.
    """

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if not inspect.isabstract(cls):
            register_component(cls)

    # -- parameters and config -------------------------------------------------------

    @classmethod
    def from_config(cls: type[E], config: dict[str, Any]) -> E:
        """Build an (unfitted) encoder from :meth:`get_config` output; only registered classes are used.

        Examples
        --------
        >>> from recsys.content import HashingEncoder
        >>> enc = HashingEncoder(dim=64)
        >>> TextEncoder.from_config(enc.get_config()) == enc
        True
        """
        return cls._build_from_config(config, cls, "an encoder")

    def clone(self: E) -> E:
        """A new unfitted encoder with the same parameters."""
        return type(self).from_config(self.get_config())

    def __eq__(self, other: object) -> bool:
        return type(other) is type(self) and other.get_params() == self.get_params()  # type: ignore[attr-defined]

    def __hash__(self) -> int:
        return hash(json.dumps(self.get_config(), sort_keys=True, default=str))

    # -- fitting and encoding ------------------------------------------------------------

    def _validate_params(self) -> None:
        """Check parameters; raise ParameterError."""

    def _fit(self, texts: list[str]) -> None:
        """Learn from ``texts`` (only non-empty ones are passed)."""

    @abstractmethod
    def _encode(self, texts: list[str], show_progress: bool | None) -> NDArray[np.float32]:
        """Vectors of non-empty texts, shape (len(texts), dim)."""

    @property
    @abstractmethod
    def embedding_dim(self) -> int:
        """Length of the vectors (available once the encoder is usable)."""

    @property
    def is_fitted(self) -> bool:
        """True when :meth:`encode` can be called."""
        return True

    def fit(self: E, texts: Sequence[str]) -> E:
        """Learn from ``texts`` (a no-op for pre-trained encoders) and return ``self``.

        Raises
        ------
        DataTypeError
            ``texts`` is not a sequence of str.
        ParameterError
            A parameter is invalid.
        """
        self._validate_params()
        clean = check_texts(texts, f"{type(self).__name__}.fit")
        self._fit([t for t in clean if t.strip()])
        return self

    def encode(self, texts: Sequence[str], *, show_progress: bool | None = None) -> NDArray[np.float32]:
        """Vectors of ``texts``: a float32 array of shape (len(texts), dim), row i for text i.

        Parameters
        ----------
        texts : sequence of str
            Empty or whitespace-only texts get the zero vector.
        show_progress : bool, optional
            Progress bar for long encodings; default on when stderr is a terminal.

        Raises
        ------
        NotFittedError
            The encoder learns from a corpus and was not fitted.
        DataTypeError
            ``texts`` is not a sequence of str.
        """
        self._validate_params()
        clean = check_texts(texts, f"{type(self).__name__}.encode")
        self._check_usable()
        rows = [i for i, t in enumerate(clean) if t.strip()]
        if not rows:
            return np.zeros((len(clean), self.embedding_dim), dtype=np.float32)
        vecs = np.asarray(self._encode([clean[i] for i in rows], show_progress), dtype=np.float32)
        if vecs.ndim != 2 or len(vecs) != len(rows):
            raise RecsysError(f"{type(self).__name__} produced vectors of shape {vecs.shape}; expected ({len(rows)}, dim)")
        if not np.isfinite(vecs).all():
            raise DataError(f"{type(self).__name__} produced non-finite vectors; the encoder is broken")
        if len(rows) == len(clean):
            return vecs
        out = np.zeros((len(clean), vecs.shape[1]), dtype=np.float32)
        out[rows] = vecs
        return out

    def _check_usable(self) -> None:
        if not self.is_fitted:
            from recsys.errors import NotFittedError

            raise NotFittedError(f"This {type(self).__name__} is not fitted yet: call fit(texts) first.")


__all__ = ["EXTRA_HINT", "MissingDependencyError", "TextEncoder", "check_texts", "require_module"]
