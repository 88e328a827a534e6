"""Recommenders: every model shares the :class:`Recommender` API."""

from recsys.models.base import Recommender
from recsys.models.content import ContentBased, Hybrid
from recsys.models.ease import EASE
from recsys.models.knn import ItemKNN, UserKNN
from recsys.models.mf import ALS, BPR
from recsys.models.popular import Popular

__all__ = ["ALS", "BPR", "ContentBased", "EASE", "Hybrid", "ItemKNN", "Popular", "Recommender", "UserKNN"]
