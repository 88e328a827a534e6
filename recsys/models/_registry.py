"""Model names of the CLI and the benchmarks -> recsys models with the library's defaults, and small search spaces for ``--tune``.

A model that needs an extra that is not installed (gensim for doc2vec,
sentence-transformers for bert and hybrid) resolves to a :class:`Skip` with the
reason and the ``pip install`` that enables it, never to an error.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from recsys.models.base import Recommender


class Skip(Exception):
    """A model that cannot run here; the message says why and how to enable it."""


def _cls(name: str) -> Any:
    import recsys.models  # at call time: this module is imported while recsys.models loads

    return getattr(recsys.models, name)


def _need(module: str, extra: str, what: str) -> None:
    if importlib.util.find_spec(module) is None:
        raise Skip(f"{what} needs {module} (pip install 'recsys[{extra}]')")


@dataclass(frozen=True)
class Context:
    """What a factory may look at: the size of the data and how to build other registry models."""

    n_items: int = 0
    build: Callable[[str], Recommender] | None = None


@dataclass(frozen=True)
class ModelSpec:
    """One CLI model name.

    ``space`` lists a small search space for ``--tune`` (parameter name ->
    values); a parameter the built model does not have is dropped with a note.
    """

    name: str
    description: str
    factory: Callable[[Context], Recommender]
    space: dict[str, list[Any]] = field(default_factory=dict)
    n_trials: int | None = None  # None: the whole (small) grid


def _simple(class_name: str) -> Callable[[Context], Recommender]:
    def make(ctx: Context) -> Recommender:
        model: Recommender = _cls(class_name)()
        return model

    return make


def _content(encoder: str) -> Callable[[Context], Recommender]:
    def make(ctx: Context) -> Recommender:
        cb = _cls("ContentBased")
        if encoder == "doc2vec":
            _need("gensim", "content", "doc2vec")
            from recsys.content import Doc2VecEncoder

            model: Recommender = cb(encoder=Doc2VecEncoder())
            return model
        _need("sentence_transformers", "content", "bert")
        from recsys.content import BertEncoder

        bert: Recommender = cb(encoder=BertEncoder())
        return bert

    return make


def _hybrid(ctx: Context) -> Recommender:
    hybrid = _cls("Hybrid")
    cf = _cls("ItemKNN")()
    content = _content("bert")(ctx)
    model: Recommender = hybrid(cf=cf, content=content)
    return model


def _retriever_name(ctx: Context) -> str:
    # EASE is the strongest retriever here, but dense in items: above its size limit its sparse
    # variant, within 1.2% of its NDCG (benchmarks/results/ease_scale.md).
    limit = int(_cls("EASE")().get_params().get("max_items", 20_000))
    return "ease" if ctx.n_items <= limit else "sparse_ease"


def _ranker(class_name: str) -> Callable[[Context], Recommender]:
    def make(ctx: Context) -> Recommender:
        assert ctx.build is not None
        retriever = ctx.build(_retriever_name(ctx))
        # one holdout, not the default five cross-fitting folds: the leaderboard runs in 10 minutes, and
        # over EASE the folds do not help (benchmarks/results/deep.md)
        model: Recommender = _cls("Pipeline")(retriever=retriever, ranker=_cls(class_name)(), n_folds=1)
        return model

    return make


MODELS: dict[str, ModelSpec] = {
    s.name: s
    for s in (
        ModelSpec("popular", "most interacted items (baseline)", _simple("Popular")),
        ModelSpec(
            "itemknn",
            "item-based k-NN",
            _simple("ItemKNN"),
            {"k": [100, 200, 400], "weighting": ["tfidf", "bm25"], "shrinkage": [0.0, 50.0]},
        ),
        ModelSpec(
            "userknn",
            "user-based k-NN",
            _simple("UserKNN"),
            {"k": [50, 100, 200], "weighting": ["tfidf", "bm25"], "shrinkage": [0.0, 50.0]},
        ),
        ModelSpec("ease", "EASE closed-form item autoencoder", _simple("EASE"), {"reg": [100.0, 200.0, 300.0, 500.0, 750.0, 1000.0]}),
        ModelSpec(
            "sparse_ease",
            "EASE on each item's top co-occurring items (catalogues beyond EASE's dense limit)",
            _simple("SparseEASE"),
            {"n_neighbours": [128, 256, 512], "reg": [100.0, 300.0, 1000.0]},
        ),
        ModelSpec(
            "sessionease",
            "EASE with users' rating sessions as extra co-occurrence rows (needs timestamps)",
            _simple("SessionEASE"),
            {"reg": [300.0, 500.0, 800.0], "session_weight": [1.0, 2.0, 4.0]},
        ),
        ModelSpec(
            "als",
            "implicit ALS matrix factorisation",
            _simple("ALS"),
            {"n_factors": [16, 32, 64], "reg": [10.0, 30.0, 100.0], "alpha": [1.0, 5.0], "weighting": ["tfidf", "bm25"]},
            n_trials=10,
        ),
        ModelSpec(
            "blend",
            "ALS (64 factors, bm25: the ALS search's choice) + SessionEASE, z-scored score blend",
            _simple("Blend"),
            {"weights": [[0.5, 0.5], [0.6, 0.4], [0.7, 0.3], [0.8, 0.2]]},
        ),
        ModelSpec(
            "bpr",
            "BPR matrix factorisation",
            _simple("BPR"),
            {"n_factors": [64, 128], "lr": [0.05, 0.1], "reg": [0.01, 0.03]},
            n_trials=6,
        ),
        ModelSpec(
            "svdpp",
            "SVD++ (ratings + implicit feedback)",
            _simple("SVDpp"),
            {"n_factors": [20, 50], "reg": [0.03, 0.06], "n_epochs": [8, 15]},
        ),
        ModelSpec(
            "doc2vec",
            "content-based, Doc2Vec item texts",
            _content("doc2vec"),
            {"encoder.vector_size": [32, 64, 128], "values": ["weight", "rating"], "center": [True, False]},
            n_trials=6,
        ),
        ModelSpec("bert", "content-based, BERT (MiniLM) item texts", _content("bert"), {"values": ["weight", "rating"], "center": [True, False]}),
        ModelSpec(
            "hybrid",
            "ItemKNN + BERT content blend",
            _hybrid,
            {"weight": [0.5, 0.7, 0.9], "normalise": ["minmax", "zscore"], "cold": ["content", "blend"]},
            n_trials=8,
        ),
        ModelSpec("deepfm", "DeepFM ranking a retriever's candidates", _ranker("DeepFM"), {"n_candidates": [50, 100, 200]}),
        ModelSpec("din", "DIN ranking a retriever's candidates", _ranker("DIN"), {"n_candidates": [50, 100, 200]}),
        ModelSpec("sharedbottom", "shared-bottom multi-task (click x like) ranking a retriever's candidates", _ranker("SharedBottom"), {"n_candidates": [50, 100, 200]}),
        ModelSpec("mmoe", "MMoE multi-task (click x like) ranking a retriever's candidates", _ranker("MMoE"), {"n_candidates": [50, 100, 200]}),
        ModelSpec("ple", "PLE multi-task (click x like) ranking a retriever's candidates", _ranker("PLE"), {"n_candidates": [50, 100, 200]}),
        ModelSpec("esmm", "ESMM (pCTR x pCVR) ranking a retriever's candidates", _ranker("ESMM"), {"n_candidates": [50, 100, 200]}),
        ModelSpec("sasrec", "SASRec next-item transformer (needs timestamps)", _simple("SASRec"), {"dropout": [0.2, 0.5], "max_len": [50, 200]}),
        ModelSpec("gru4rec", "GRU4Rec next-item recurrent model (needs timestamps)", _simple("GRU4Rec"), {"dropout": [0.2, 0.5], "dim": [64, 128]}),
    )
}

# The sequential models are meant for a leave-one-out protocol on timestamped data (benchmarks/sequential.py)
# and train for minutes: `recsys benchmark` runs them when named, not by default.
SEQUENTIAL_MODELS = ("sasrec", "gru4rec")
DEFAULT_MODELS = tuple(m for m in MODELS if m not in SEQUENTIAL_MODELS)


def build(name: str, n_items: int = 0) -> Recommender:
    """The model called ``name`` with the library's defaults; raises :class:`Skip` when it cannot run here."""
    spec = MODELS[name]

    def sub(other: str) -> Recommender:
        return build(other, n_items)

    return spec.factory(Context(n_items=n_items, build=sub))


def tune_space(name: str, model: Recommender) -> tuple[dict[str, list[Any]], list[str]]:
    """The model's small search space, keeping only parameters it has; and notes on what was dropped."""
    from recsys.errors import ParameterError
    from recsys.tuning import apply_params

    config = model.get_config()
    space: dict[str, list[Any]] = {}
    dropped: list[str] = []
    for key, values in MODELS[name].space.items():
        try:
            apply_params(config, {key: values[0]})
        except ParameterError:
            dropped.append(key)
            continue
        space[key] = list(values)
    return space, dropped
