"""Recommenders: every model shares the :class:`Recommender` API."""

from recsys.models.base import Recommender
from recsys.models.content import ContentBased, Hybrid
from recsys.models.deep import DIN, DeepFM
from recsys.models.ease import EASE
from recsys.models.knn import ItemKNN, UserKNN
from recsys.models.mf import ALS, BPR
from recsys.models.pipeline import Pipeline
from recsys.models.popular import Popular
from recsys.models.session_ease import SessionEASE
from recsys.models.svdpp import SVDpp

__all__ = ["ALS", "BPR", "ContentBased", "DIN", "DeepFM", "EASE", "Hybrid", "ItemKNN", "Pipeline", "Popular", "Recommender", "SessionEASE", "SVDpp", "UserKNN"]
