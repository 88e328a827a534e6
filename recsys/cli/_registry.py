"""Moved to :mod:`recsys.models._registry` (the CLI and the benchmarks share it); this path re-exports it."""

from recsys.models._registry import DEFAULT_MODELS, MODELS, Context, ModelSpec, Skip, build, tune_space

__all__ = ["DEFAULT_MODELS", "MODELS", "Context", "ModelSpec", "Skip", "build", "tune_space"]
