"""MissingDependencyError lives in recsys.errors; ReloadFailure is the store's rejected-version record."""

from __future__ import annotations

import dataclasses
import warnings

import pytest

import recsys.content
import recsys.content._base
import recsys.serving
import recsys.serving._store
from recsys.errors import MissingDependencyError, RecsysError


def test_missing_dependency_error_home_and_old_paths() -> None:
    assert MissingDependencyError.__module__ == "recsys.errors"
    assert issubclass(MissingDependencyError, RecsysError) and issubclass(MissingDependencyError, ImportError)
    assert recsys.content.MissingDependencyError is MissingDependencyError
    assert recsys.content._base.MissingDependencyError is MissingDependencyError
    with pytest.raises(MissingDependencyError, match="'no_such_module_xyz'"):
        recsys.content._base.require_module("no_such_module_xyz", "Demo")


def test_reload_failure_is_a_record_and_the_old_name_warns() -> None:
    from recsys.serving import ReloadFailure

    assert dataclasses.is_dataclass(ReloadFailure) and not issubclass(ReloadFailure, BaseException)
    rec = ReloadFailure(version="v2", path="/x/v2", error="bad", at=0.0)
    assert rec.as_dict() == {"version": "v2", "path": "/x/v2", "error": "bad", "at": "1970-01-01T00:00:00.000+00:00"}
    for module in (recsys.serving, recsys.serving._store):
        with pytest.warns(DeprecationWarning, match="ReloadError is deprecated; use ReloadFailure"):
            old = module.ReloadError
        assert old is ReloadFailure
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        from recsys.serving import ReloadFailure as again  # the new name is silent
    assert again is ReloadFailure
    with pytest.raises(AttributeError, match="no attribute 'Nope'"):
        recsys.serving.Nope  # noqa: B018
