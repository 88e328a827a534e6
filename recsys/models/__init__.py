"""Recommenders: every model shares the :class:`Recommender` API."""

from recsys.models.base import Recommender
from recsys.models.ease import EASE
from recsys.models.knn import ItemKNN, UserKNN
from recsys.models.popular import Popular

__all__ = ["EASE", "ItemKNN", "Popular", "Recommender", "UserKNN"]
