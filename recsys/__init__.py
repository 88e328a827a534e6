"""recsys: classic and deep recommenders behind one API, on one data layer."""

from recsys._version import __version__
from recsys.data import IdMap, Interactions
from recsys.errors import (
    ArtifactError,
    DataError,
    DataWarning,
    NotFittedError,
    NotSupportedError,
    ParameterError,
    RecsysError,
    UnknownIdError,
)
from recsys.persistence import load_model

__all__ = [
    "__version__",
    "load_model",
    "ArtifactError",
    "DataError",
    "DataWarning",
    "IdMap",
    "Interactions",
    "NotFittedError",
    "NotSupportedError",
    "ParameterError",
    "RecsysError",
    "UnknownIdError",
]
