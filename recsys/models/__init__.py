"""Recommenders: every model shares the :class:`Recommender` API.

The torch models (:class:`DeepFM`, :class:`DIN`, :class:`SASRec`, :class:`GRU4Rec` and the multi-task
:class:`SharedBottom`, :class:`MMoE`, :class:`PLE`, :class:`ESMM`) are imported on first use, so
``import recsys.models`` stays fast for services that never train them.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from recsys._utils.registry import LAZY_CLASSES
from recsys.models.als import ALS
from recsys.models.base import Recommender
from recsys.models.blend import Blend
from recsys.models.bpr import BPR
from recsys.models.content_based import ContentBased, Hybrid
from recsys.models.ease import EASE
from recsys.models.knn import ItemKNN, UserKNN
from recsys.models.pipeline import Pipeline, Ranker
from recsys.models.popular import Popular
from recsys.models.session_ease import SessionEASE
from recsys.models.sparse_ease import SparseEASE
from recsys.models.svdpp import SVDpp

if TYPE_CHECKING:
    from recsys.models.deep import DIN, ESMM, PLE, DeepFM, GRU4Rec, MMoE, SASRec, SharedBottom

__all__ = ["ALS", "BPR", "Blend", "ContentBased", "DIN", "DeepFM", "EASE", "ESMM", "GRU4Rec", "Hybrid", "ItemKNN", "MMoE", "PLE", "Pipeline", "Popular", "Ranker", "Recommender", "SASRec", "SessionEASE", "SharedBottom", "SparseEASE", "SVDpp", "UserKNN"]

def __getattr__(name: str) -> Any:
    if name in LAZY_CLASSES:
        return getattr(importlib.import_module(LAZY_CLASSES[name]), name)
    raise AttributeError(f"module 'recsys.models' has no attribute {name!r}")
