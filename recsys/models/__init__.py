"""Recommenders: every model shares the :class:`Recommender` API."""

from recsys.models.base import Recommender
from recsys.models.popular import Popular

__all__ = ["Popular", "Recommender"]
