"""Matrix factorisation for implicit feedback: ALS (Hu, Koren & Volinsky 2008) and BPR (Rendle et al. 2009).

The models live in :mod:`recsys.models.als` and :mod:`recsys.models.bpr`
(what they share in :mod:`recsys.models._factorization`); this module keeps
the import path ``recsys.models.mf`` and the names artifacts store
(``"recsys.models.mf.ALS"``, ``"recsys.models.mf.BPR"``).

Both models end in one vector per user and per item; the score is their dot
product and retrieval goes through the shared :class:`~recsys.index.ItemIndex`.
Both fold in new users (:meth:`~recsys.models.base.Recommender.recommend_history`)
and take online updates without a refit: ``partial_fit_users`` re-solves the
vectors of the given users with the item vectors fixed, ``partial_fit_items``
solves the vectors of new (or updated) catalogue items with the user vectors
fixed.
"""

from __future__ import annotations

from recsys.models._factorization import FactorVectors
from recsys.models.als import ALS
from recsys.models.bpr import BPR

__all__ = ["ALS", "BPR", "FactorVectors"]
