"""Batch recommendation and evaluation past one process: partitioned Parquet, locally or on Ray.

:func:`recommend_all` writes the top-k lists of every user of a saved model
as one Parquet partition per user block, resumably, in this process
(``engine="local"``) or on a Ray cluster (``engine="ray"``: ``ray.data`` actor
workers, each loading the artifact once, memory-mapped).
:func:`evaluate_distributed` evaluates such a directory partition by
partition: every metric is merged exactly from per-partition sums and counts
(and per-item slot counts for the set-level metrics), so it equals
:class:`recsys.evaluation.Evaluator` on the concatenated lists.

Ray is optional (``pip install 'recsys[ray]'``) and imported only when
``engine="ray"`` is used.
"""

from recsys.distributed._engine import RayConnectionError
from recsys.distributed._evaluate import evaluate_distributed
from recsys.distributed._recommend import PartitionedRecommendations, recommend_all

__all__ = ["PartitionedRecommendations", "RayConnectionError", "evaluate_distributed", "recommend_all"]
