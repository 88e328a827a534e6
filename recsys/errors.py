"""Exceptions and warnings raised by recsys.

Every error derives from :class:`RecsysError`. Each subclass also inherits the
builtin exception that existing code would catch (``ValueError``, ``KeyError``,
``TypeError``...), so ``except ValueError:`` keeps working.
"""

from __future__ import annotations

__all__ = [
    "RecsysError",
    "DataError",
    "DataTypeError",
    "MissingColumnError",
    "UnknownIdError",
    "ParameterError",
    "NotFittedError",
    "NotSupportedError",
    "ArtifactError",
    "DatasetError",
    "DownloadError",
    "MissingDependencyError",
    "RecsysWarning",
    "DataWarning",
]


class RecsysError(Exception):
    """Base class of every error raised by recsys."""


# -- bad input data ---------------------------------------------------------


class DataError(RecsysError, ValueError):
    """Input data has an invalid value (null id, NaN rating, duplicate row...)."""


class DataTypeError(DataError, TypeError):
    """Input data has the wrong type (a non-numeric rating column...)."""


class MissingColumnError(DataError, KeyError):
    """A required column is absent from a frame."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


class UnknownIdError(RecsysError, KeyError):
    """External ids that are not in an id map."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


# -- bad use of the API -----------------------------------------------------


class ParameterError(RecsysError, ValueError):
    """A hyper-parameter or argument is out of its allowed range."""


class NotFittedError(RecsysError, ValueError, AttributeError):
    """A model was used before ``fit``."""


class NotSupportedError(RecsysError, NotImplementedError):
    """The model does not support the requested operation."""


# -- files and network ------------------------------------------------------


class ArtifactError(RecsysError, ValueError):
    """A saved model is missing, truncated, tampered with or foreign."""


class DatasetError(RecsysError, OSError):
    """A dataset is missing locally or cannot be read."""


class DownloadError(DatasetError):
    """A download failed or did not match its published checksum."""


class MissingDependencyError(RecsysError, ImportError):
    """An optional dependency (an extra such as ``recsys[content]``) or a model file is not installed."""


# -- warnings ---------------------------------------------------------------


class RecsysWarning(UserWarning):
    """Base class of recsys warnings."""


class DataWarning(RecsysWarning):
    """Input was converted or merged; the message says what and how much."""
