"""What DeepFM and DIN share: labels, negatives, validation, the trainer, inference and persistence."""

from __future__ import annotations

import copy
import os
import time
import warnings
from abc import abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
from numpy.typing import ArrayLike, NDArray

from recsys._state_spec import INDEX_DTYPES, Array, ArrayDict, Flag, Json, Spec, Where
from recsys._utils.params import check_bool, check_choice, check_float, check_int
from recsys.data import Interactions
from recsys.data._validation import check_timestamps
from recsys.errors import ArtifactError, DataError, NotSupportedError, ParameterError
from recsys.models.base import Recommender
from recsys.models.deep._samples import EpochRows, HistoryStore, NegativeSampler, Rows, base_rows, sample_negatives
from recsys.models.deep.features import FieldTables, encode_fields, parse_specs
from recsys.models.deep.trainer import TrainConfig, Trainer, launched_distributed, resolve_device, torch_threads

# Pairs per inference forward pass (DIN divides it by the history length).
_INFER_PAIRS = 16384
# Embedding-table rows above which lazy_embeddings=None updates only each batch's rows: dense Adam costs a
# pass over the whole table per batch (about 4x a batch's own work at ML-20M size, 165,000 rows).
LAZY_ROWS = 20_000
_TABLES = ("user_cat", "item_cat", "user_multi", "item_multi", "user_num", "item_num")
# Tables kept (and saved) only by a model with vector fields: the artifacts of the others stay as they were.
_VECTOR_TABLES = ("user_vec", "item_vec")
_FIELD_KEYS = {
    "categorical": {"name", "side", "kind", "size", "offset"},
    "multi": {"name", "side", "kind", "size", "offset", "start", "stop"},
    "numeric": {"name", "side", "kind"},
    "vector": {"name", "side", "kind", "dim", "start", "stop"},
}


def _uses_history(model: Any) -> bool:
    return bool(model.uses_history)


def _check_fields(fields: Any, fail: Callable[[str], ArtifactError]) -> dict[str, int]:
    """The dimensions ``fields_`` declares (embedding rows, per side: categorical fields, multi-valued
    width, numeric fields), checked to be a well-formed field list whose rows fit the table."""
    if not isinstance(fields, dict) or set(fields) != {"fields", "n_rows"} or not isinstance(fields["fields"], list):
        raise fail("must be {'fields': [...], 'n_rows': int}")
    n_rows = fields["n_rows"]
    if type(n_rows) is not int or not 1 <= n_rows < 2**31:
        raise fail(f"has n_rows={n_rows!r:.40}; expected an int in [1, 2**31)")
    dims = {"n_rows": n_rows, "user_cat": 0, "item_cat": 0, "user_multi": 0, "item_multi": 0, "user_num": 0, "item_num": 0,
            "user_vec": 0, "item_vec": 0}
    for f in fields["fields"]:
        kind = f.get("kind") if isinstance(f, dict) else None
        if kind not in _FIELD_KEYS or set(f) != _FIELD_KEYS[kind] or f["side"] not in ("user", "item") or not isinstance(f["name"], str):
            raise fail(f"holds a malformed field {f!r:.120}")
        side = f["side"]
        if kind == "vector":  # columns of the side's vector table, tiled in order
            ints = [f[k] for k in ("dim", "start", "stop")]
            if any(type(v) is not int for v in ints) or f["start"] != dims[side + "_vec"] or not 0 < f["dim"] == f["stop"] - f["start"]:
                raise fail(f"holds vector field {f['name']!r:.60} with dim {f['dim']!r:.20} and columns [{f['start']!r:.20}, {f['stop']!r:.20}); expected to start at {dims[side + '_vec']}")
            dims[side + "_vec"] = f["stop"]
            continue
        ints = [f[k] for k in ("size", "offset", "start", "stop") if k in f]
        if any(type(v) is not int or not 0 <= v <= n_rows for v in ints):
            raise fail(f"holds a field with sizes or offsets outside [0, n_rows={n_rows}]: {f!r:.120}")
        if kind == "categorical":
            dims[side + "_cat"] += 1
        elif kind == "numeric":
            dims[side + "_num"] += 1
        else:  # multi-valued fields tile their side's padded matrix in order
            if f["start"] != dims[side + "_multi"] or f["stop"] <= f["start"]:
                raise fail(f"holds multi-valued field {f['name']!r:.60} with columns [{f['start']}, {f['stop']}); expected to start at {dims[side + '_multi']}")
            dims[side + "_multi"] = f["stop"]
        if kind != "numeric" and f["offset"] + f["size"] > n_rows:
            raise fail(f"holds field {f['name']!r:.60} whose rows end past n_rows={n_rows}")
    return dims


class _Source:
    """Epoch rows: fixed labelled rows, or positives plus freshly sampled negatives each epoch
    (index arrays only; the trainer gathers each batch from them)."""

    def __init__(
        self,
        rows: Rows,
        sampler: NegativeSampler | None,
        ratio: int,
        seed: int,
        names: tuple[str, ...],
        neg_label: NDArray[np.float32] | None = None,
    ) -> None:
        self.rows, self.sampler, self.ratio, self.seed, self.names = rows, sampler, ratio, seed, names
        self.neg_label = neg_label

    def epoch(self, epoch: int) -> EpochRows:
        rng = np.random.default_rng([self.seed, epoch, 1])
        return sample_negatives(self.rows, self.sampler, self.ratio, rng, self.names, self.neg_label)


@dataclass
class CandidateRows:
    """Labelled candidate rows for training a ranker inside a :class:`~recsys.models.Pipeline`.

    ``history[fold[r]]`` holds the interactions row ``r``'s candidate was
    retrieved from (the behaviour history of DIN; one per cross-fitting fold);
    ``prior`` the retriever's standardised score of each candidate, added to
    the ranker's logit through a learned weight.
    """

    history: list[Interactions]
    fold: NDArray[np.int64]
    users: NDArray[np.int64]
    items: NDArray[np.int64]
    labels: NDArray[np.float32]
    prior: NDArray[np.float32]

    def history_rows(
        self, labels: Callable[[Interactions], NDArray[Any]], max_len: int
    ) -> tuple[NDArray[np.int64], NDArray[np.int64], NDArray[np.int64]]:
        """``(items, end, length)``: every fold's history store laid end to end, and each row's run in it
        (the whole history of the row's user in the row's fold, the most recent ``max_len``);
        ``labels(part)`` marks a fold's positives."""
        items, end, length = [], np.zeros(len(self.users), np.int64), np.zeros(len(self.users), np.int64)
        offset = 0
        for f, part in enumerate(self.history):
            store = HistoryStore.from_interactions(part, labels(part) > 0.5)
            mine = self.fold == f
            e, n = store.lookup(self.users[mine], None, max_len)
            end[mine], length[mine] = e + offset, n
            items.append(store.items.astype(np.int64))
            offset += len(store.items)
        return np.concatenate(items), end, length


def _sparse_table(module: Any, on: bool) -> None:
    """Make the embedding table of a DeepFM / DIN network give sparse (``on``) or dense gradients."""
    module.emb.table.sparse = on


def _check_units(owner: str, name: str, value: Any) -> tuple[int, ...]:
    if isinstance(value, (str, bytes)) or not isinstance(value, (list, tuple)) or not value:
        raise ParameterError(
            f"The {name!r} parameter of {owner} must be a non-empty list of ints >= 1. Got {value!r} instead."
        )
    return tuple(check_int(owner, name, v, low=1) for v in value)


class DeepRecommender(Recommender):
    """Base of the torch CTR models (see :class:`~recsys.models.DeepFM` for the shared parameters)."""

    uses_history: ClassVar[bool] = False
    input_names: ClassVar[tuple[str, ...]] = ("user", "item")

    _state_spec: ClassVar[dict[str, Spec]] = {
        "uses_prior_": Flag(),
        # embedding rows of every user / item field: indices into the shared table
        "user_cat_": Array(shape=("n_users", "user_cat"), dtype=("int64",), bounds=(0, "n_rows")),
        "item_cat_": Array(shape=("n_items", "item_cat"), dtype=("int64",), bounds=(0, "n_rows")),
        "user_multi_": Array(shape=("n_users", "user_multi"), dtype=("int64",), bounds=(0, "n_rows")),
        "item_multi_": Array(shape=("n_items", "item_multi"), dtype=("int64",), bounds=(0, "n_rows")),
        "user_num_": Array(shape=("n_users", "user_num")),
        "item_num_": Array(shape=("n_items", "item_num")),
        # L2-normalised vector fields: present when fields_ declares some (checked in _check_loaded_state)
        "user_vec_": Array(shape=("n_users", "user_vec"), optional=True),
        "item_vec_": Array(shape=("n_items", "item_vec"), optional=True),
        "fields_": Json(types=(dict,)),  # checked by _check_fields
        "history_indptr_": Array(shape=(None,), dtype=("int64",), nondecreasing=True, ends="n_history", when=_uses_history),
        "history_items_": Array(shape=("n_history",), dtype=INDEX_DTYPES, bounds=(0, "n_items"), when=_uses_history),
        "history_timestamps_": Array(shape=("n_history",), dtype=("int64", "float64"), when=_uses_history),
        "timestamp_unit_": Json(types=(str, type(None))),
        "state_dict_": ArrayDict(),  # shapes checked against the network in _prepare
        "train_log_": Json(types=(dict,)),
    }

    # DeepFM's parameters (documented there). A model with more repeats these in its own
    # signature, which get_params reads, and hands them on to this __init__.
    def __init__(
        self,
        label_threshold: float | None = None,
        negative_sampling: str = "uniform",
        negative_ratio: int = 4,
        features: list[str] | None = None,
        embedding_dim: int = 8,
        hidden_units: tuple[int, ...] | list[int] = (256, 128),
        activation: str = "relu",
        dropout: float = 0.0,
        l2_embedding: float = 1e-5,
        l2_dnn: float = 0.0,
        learning_rate: float = 1e-3,
        batch_size: int = 256,
        epochs: int = 10,
        patience: int = 2,
        validation_fraction: float = 0.1,
        refit: bool = True,
        time_budget: float | None = None,
        seed: int = 0,
        device: str = "auto",
        num_threads: int | None = None,
        show_progress: bool | None = None,
        lazy_embeddings: bool | None = None,
    ) -> None:
        self.label_threshold = label_threshold
        self.negative_sampling = negative_sampling
        self.negative_ratio = negative_ratio
        self.features = features
        self.embedding_dim = embedding_dim
        self.hidden_units = hidden_units
        self.activation = activation
        self.dropout = dropout
        self.l2_embedding = l2_embedding
        self.l2_dnn = l2_dnn
        self.learning_rate = learning_rate
        self.batch_size = batch_size
        self.epochs = epochs
        self.patience = patience
        self.validation_fraction = validation_fraction
        self.refit = refit
        self.time_budget = time_budget
        self.seed = seed
        self.device = device
        self.num_threads = num_threads
        self.show_progress = show_progress
        self.lazy_embeddings = lazy_embeddings

    # -- hooks ------------------------------------------------------------------------------

    @abstractmethod
    def _build_module(self, tables: FieldTables, history_items: NDArray[np.int64] | None, prior: bool = False) -> Any:
        """A fresh torch module (seeded by the caller) over the encoded fields; with ``prior`` its
        forward takes a ``prior`` input added to the logit through a learned weight."""

    def _inputs(self) -> tuple[str, ...]:
        return self.input_names + (("prior",) if getattr(self, "uses_prior_", False) else ())

    @property
    def max_history_len(self) -> int:
        return 0

    # -- parameters -------------------------------------------------------------------------

    def _validate_params(self) -> None:
        owner = type(self).__name__
        if self.label_threshold is not None:
            check_float(owner, "label_threshold", self.label_threshold)
        check_choice(owner, "negative_sampling", self.negative_sampling, ("uniform", "popularity"))
        check_int(owner, "negative_ratio", self.negative_ratio, low=1)
        parse_specs(self.features, owner)
        check_int(owner, "embedding_dim", self.embedding_dim, low=1)
        _check_units(owner, "hidden_units", self.hidden_units)
        check_choice(owner, "activation", self.activation, ("relu", "prelu", "dice"))
        check_float(owner, "dropout", self.dropout, low=0.0, high=1.0, high_open=True)
        check_float(owner, "l2_embedding", self.l2_embedding, low=0.0)
        check_float(owner, "l2_dnn", self.l2_dnn, low=0.0)
        check_float(owner, "learning_rate", self.learning_rate, low=0.0, low_open=True)
        check_int(owner, "batch_size", self.batch_size, low=1)
        check_int(owner, "epochs", self.epochs, low=1)
        check_int(owner, "patience", self.patience, low=1)
        check_float(owner, "validation_fraction", self.validation_fraction, low=0.0, high=1.0, high_open=True)
        check_bool(owner, "refit", self.refit)
        if self.time_budget is not None:
            check_float(owner, "time_budget", self.time_budget, low=0.0, low_open=True)
        check_int(owner, "seed", self.seed, low=0)
        if getattr(self, "_loading", False):  # a saved CUDA model loads on the CPU (with a warning, in _prepare)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                resolve_device(self.device, owner, strict=False)
        else:
            resolve_device(self.device, owner)
        if self.num_threads is not None:
            check_int(owner, "num_threads", self.num_threads, low=1)
        check_bool(owner, "show_progress", self.show_progress, optional=True)
        check_bool(owner, "lazy_embeddings", self.lazy_embeddings, optional=True)

    # -- fitting -------------------------------------------------------------------------------

    # Hooks of the training rows (a multi-task model overrides them): a row's label(s), the
    # positives its behaviour history holds, whether negatives are sampled and their label(s), and
    # the labels of a retriever's candidates.

    def _labels(self, part: Interactions) -> NDArray[np.float32]:
        if self.label_threshold is None:
            return np.ones(part.nnz, dtype=np.float32)
        assert part.ratings is not None
        return (part.ratings >= self.label_threshold).astype(np.float32)

    def _history_labels(self, part: Interactions) -> NDArray[np.float32]:
        return self._labels(part)

    def _samples_negatives(self) -> bool:
        return self.label_threshold is None

    def _negative_label(self) -> NDArray[np.float32] | None:
        return None  # label 0

    def _candidate_labels(self, data: Interactions, candidates: CandidateRows) -> NDArray[np.float32]:
        return candidates.labels

    def _split(self, data: Interactions) -> tuple[Interactions, Interactions | None]:
        if self.validation_fraction == 0:
            return data, None
        from recsys.split import temporal_split, train_validation_split

        if data.timestamps is not None:  # the latest rows of each user, like a temporal test split
            fit_part, valid = temporal_split(data, test_fraction=self.validation_fraction, by="user")
        else:
            fit_part, valid = train_validation_split(data, ratio=1.0 - self.validation_fraction, by="user", seed=self.seed)
        if valid.nnz == 0 or fit_part.nnz == 0:
            return data, None
        return fit_part, valid

    def _fit(self, data: Interactions) -> None:
        owner = type(self).__name__
        candidates: CandidateRows | None = self.__dict__.pop("_candidate_rows", None)
        if self.label_threshold is not None and data.ratings is None:
            raise DataError(f"{owner}(label_threshold={self.label_threshold}) needs ratings; these interactions have none")
        if self.uses_history and data.timestamps is None:
            raise DataError(
                f"{owner} builds each row's behaviour history from earlier interactions and needs timestamps "
                "(pass timestamp_col when building the Interactions)"
            )
        tables = encode_fields(data, parse_specs(self.features, owner))
        max_len = self.max_history_len
        labels_all = self._labels(data)
        store = HistoryStore.from_interactions(data, self._history_labels(data) > 0.5) if self.uses_history else None
        self.uses_prior_ = candidates is not None
        names = self._inputs()
        if candidates is None:
            fit_part, valid_part = self._split(data)
            sampler = None
            if self._samples_negatives():
                sampler = NegativeSampler(data, self.negative_sampling)
            neg = self._negative_label()
            source = _Source(base_rows(fit_part, self._labels(fit_part), store, max_len), sampler, self.negative_ratio, self.seed, names, neg)
            valid = None
            if valid_part is not None:
                vrows = base_rows(valid_part, self._labels(valid_part), store, max_len)
                vset = sample_negatives(vrows, sampler, self.negative_ratio, np.random.default_rng([self.seed, 99991]), names, neg)
                valid = vset if vset.has_both_labels() else None
            # without a validation split the refit rows are the training rows (and no refit happens)
            full_rows = source.rows if fit_part is data else base_rows(data, labels_all, store, max_len)
            full_source = _Source(full_rows, sampler, self.negative_ratio, self.seed, names, neg)
            train_items = None if store is None else store.items.astype(np.int64)
        else:
            # a ranker learns to order a retriever's candidates; their history is what they were retrieved from
            zeros = np.zeros(len(candidates.users), np.int64)
            train_items, end, length = candidates.history_rows(self._history_labels, max_len) if self.uses_history else (None, zeros, zeros)
            labels = self._candidate_labels(data, candidates)
            rows = Rows(candidates.users, candidates.items, labels, end, length, prior=candidates.prior)
            # validation rows are drawn within users: a held-out user's embedding would be untrained
            in_valid = np.random.default_rng([self.seed, 7]).random(len(rows)) < self.validation_fraction
            vset = sample_negatives(rows.take(in_valid), None, 0, np.random.default_rng(0), names)
            valid = vset if vset.has_both_labels() else None
            source = _Source(rows.take(~in_valid) if valid is not None else rows, None, 0, self.seed, names)
            full_source = _Source(rows, None, 0, self.seed, names)
        module, log = self._train(tables, train_items, source, valid, full_source)
        for name in _TABLES:
            setattr(self, name + "_", getattr(tables, name))
        for name in _VECTOR_TABLES:
            if getattr(tables, name).shape[1]:
                setattr(self, name + "_", getattr(tables, name))
            else:
                self.__dict__.pop(name + "_", None)  # from an earlier fit with vector fields
        self.fields_: dict[str, Any] = {"fields": tables.fields, "n_rows": tables.n_rows}
        if store is not None:
            self.history_indptr_ = store.indptr
            self.history_items_ = store.items
            self.history_timestamps_ = store.timestamps
        self.timestamp_unit_ = data.timestamp_unit
        self.state_dict_ = {k: v.detach().cpu().numpy().copy() for k, v in module.state_dict().items()}
        self.train_log_ = log
        # trained on other history stores (candidates): rebuild over the serving one in _prepare
        self._module: Any = module if candidates is None else None
        self._infer: Any = None

    def _train(
        self,
        tables: FieldTables,
        hist_items: NDArray[np.int64] | None,
        source: _Source,
        valid: EpochRows | None,
        full_source: _Source,
    ) -> tuple[Any, dict[str, Any]]:
        """Early stopping on ``valid``, then (``refit``) the chosen number of epochs on ``full_source``."""
        import torch

        config = TrainConfig(
            max_epochs=self.epochs,
            batch_size=self.batch_size,
            learning_rate=self.learning_rate,
            weight_decay=self.l2_dnn,
            patience=self.patience,
            time_budget=self.time_budget,
            seed=self.seed,
            device=self.device,
            num_threads=self.num_threads,
            show_progress=self.show_progress,
            desc=type(self).__name__,
        )
        prior = bool(getattr(self, "uses_prior_", False))
        lazy = self.lazy_embeddings if self.lazy_embeddings is not None else tables.n_rows > LAZY_ROWS
        lazy = lazy and not launched_distributed()  # DDP reduces dense gradients

        def build() -> Any:
            torch.manual_seed(self.seed)
            module = self._build_module(tables, hist_items, prior)
            _sparse_table(module, lazy)  # sparse table gradients: the trainer gives the table LazyAdam
            return module

        start = time.perf_counter()
        with torch_threads(self.num_threads), torch.random.fork_rng(devices=[]):
            module, result = Trainer(config).fit(build(), source, valid)
        log = result.to_dict()
        log["lazy_embeddings"] = bool(lazy)
        left = None if self.time_budget is None else self.time_budget - (time.perf_counter() - start)
        if self.refit and valid is not None and result.best_epoch >= 1 and (left is None or left > 0):
            # the validation rows (each user's latest) join the training rows for the chosen number of epochs
            config.max_epochs, config.time_budget = result.best_epoch, left
            with torch_threads(self.num_threads), torch.random.fork_rng(devices=[]):
                module, again = Trainer(config).fit(build(), full_source)
            log["refit_epochs"] = again.epochs
            log["train_seconds"] += again.train_seconds
            log["train_samples"] += again.train_samples
            log["stopped"] = result.stopped if again.stopped == "max_epochs" else again.stopped
        _sparse_table(module, False)  # inference takes the same paths as after a reload
        return module, log

    # -- state after fit / load ------------------------------------------------------------------

    def _tables(self) -> FieldTables:
        return FieldTables(
            **{name: np.asarray(getattr(self, name + "_")) for name in _TABLES},
            **{name: np.asarray(getattr(self, name + "_")) for name in _VECTOR_TABLES if hasattr(self, name + "_")},
            fields=list(self.fields_["fields"]),
            n_rows=int(self.fields_["n_rows"]),
        )

    def _validate_loaded_params(self) -> None:
        self._loading = True
        try:
            self._validate_params()
        finally:
            del self._loading

    def _check_loaded_state(self, state: dict[str, Any], where: Where, dims: dict[str, int] | None = None) -> dict[str, int]:
        def fail(msg: str) -> ArtifactError:
            return ArtifactError(f"{where('fields_')}: field 'fields_' {msg}")

        declared = _check_fields(state.get("fields_"), fail)
        for name in _VECTOR_TABLES:
            if declared[name] and name + "_" not in state:
                raise ArtifactError(f"{where(name + '_')}: field {name + '_'!r} is missing; fields_ declares {declared[name]} vector columns")
        bound = super()._check_loaded_state(state, where, {**(dims or {}), **declared})
        if "history_indptr_" in state and len(state["history_indptr_"]) != bound["n_users"] + 1:
            raise ArtifactError(
                f"{where('history_indptr_')}: field 'history_indptr_' has {len(state['history_indptr_'])} entries; "
                f"expected n_users + 1 = {bound['n_users'] + 1}"
            )
        return bound

    def _load_module_state(self, module: Any) -> None:
        """Load ``state_dict_`` into a freshly built network, refusing entries it does not have the shape of."""
        import torch

        want = module.state_dict()
        if set(want) != set(self.state_dict_):
            raise ArtifactError(
                f"state_dict_ holds {sorted(set(self.state_dict_) - set(want))[:4]} and lacks {sorted(set(want) - set(self.state_dict_))[:4]} "
                f"of the {type(self).__name__} network its parameters and fields_ describe"
            )
        for k, v in self.state_dict_.items():
            # torch loads a one-element vector into a scalar parameter (older artifacts hold those as (1,))
            if tuple(v.shape) != tuple(want[k].shape) and not (want[k].dim() == 0 and tuple(v.shape) == (1,)):
                raise ArtifactError(f"state_dict_ entry {k!r} has shape {tuple(v.shape)}; the network needs {tuple(want[k].shape)}")
        module.load_state_dict({k: torch.from_numpy(np.array(v, copy=True)) for k, v in self.state_dict_.items()})

    def _prepare(self) -> None:
        import torch

        super()._prepare()
        self._device = resolve_device(self.device, type(self).__name__, strict=False)
        if getattr(self, "_module", None) is None:
            hist = None if not self.uses_history else np.asarray(self.history_items_, dtype=np.int64)
            with torch.random.fork_rng(devices=[]):
                module = self._build_module(self._tables(), hist, bool(getattr(self, "uses_prior_", False)))
            self._load_module_state(module)
            self._module = module.to(self._device).eval()
        self._infer = None

    def _restore_state(self, state: dict[str, Any]) -> None:
        self._module = None
        super()._restore_state(state)

    @property
    def module_(self) -> Any:
        """The trained torch module (on the model's device, eval mode)."""
        self._check_fitted()
        return self._module

    def _inference_module(self) -> Any:
        """On CPU a float64 twin of the module: a pair's score then never depends on the other pairs
        of its batch (float32 GEMM results change with the batch shape), so batch and single-user
        recommendations agree exactly. On CUDA the float32 module itself."""
        if self._infer is None:
            if self._device.type == "cpu":
                self._infer = copy.deepcopy(self._module).double().eval()
            else:
                self._infer = self._module.eval()
        return self._infer

    # -- inference -----------------------------------------------------------------------------

    def _history(self, users: NDArray[np.int64], timestamps: NDArray[Any] | None) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
        store = HistoryStore(
            np.asarray(self.history_indptr_), np.asarray(self.history_items_), np.asarray(self.history_timestamps_)
        )
        return store.lookup(users, timestamps, self.max_history_len)

    def _logits(
        self,
        users: NDArray[Any],
        items: NDArray[Any],
        timestamps: NDArray[Any] | None = None,
        prior: NDArray[Any] | None = None,
    ) -> NDArray[np.float32]:
        import torch

        users = np.asarray(users, dtype=np.int64)
        items = np.asarray(items, dtype=np.int64)
        inputs: dict[str, NDArray[Any]] = {"user": users, "item": items}
        if self.uses_history:
            inputs["end"], inputs["length"] = self._history(users, timestamps)
        if getattr(self, "uses_prior_", False):
            if prior is None:
                raise NotSupportedError(
                    f"this {type(self).__name__} was trained as a Pipeline's ranker on the retriever's candidates "
                    "and scores them with the retriever's score: use it through the Pipeline"
                )
            inputs["prior"] = np.asarray(prior, dtype=np.float32)
        module = self._inference_module()
        out = np.empty((len(users),) + self._output_shape(), dtype=np.float32)
        step = max(256, _INFER_PAIRS // max(1, self.max_history_len // 8))
        with torch_threads(self.num_threads), torch.inference_mode():
            for s in range(0, len(users), step):
                batch = {
                    k: torch.from_numpy(np.ascontiguousarray(inputs[k][s : s + step])).to(self._device)
                    for k in self._inputs()
                }
                out[s : s + step] = self._forward(module, batch).float().cpu().numpy()
        return out

    def _output_shape(self) -> tuple[int, ...]:
        """Shape of one pair's output of :meth:`_forward` (``()``: one logit)."""
        return ()

    def _forward(self, module: Any, batch: dict[str, Any]) -> Any:
        """The inference output of a batch of inputs: the network's logits."""
        return module(**batch)[0]

    # -- the ranking stage of a Pipeline ---------------------------------------------------------

    def fit_ranker(self, data: Interactions, candidates: CandidateRows) -> DeepRecommender:
        """Fit as the ranking stage of a :class:`~recsys.models.Pipeline`: on a retriever's labelled
        candidates, with the retriever's standardised score as an input (see ``Pipeline``).

        The field tables and id maps come from ``data``; early stopping holds
        out ``validation_fraction`` of the candidate users, then (``refit``)
        the model is refitted on all candidate rows.
        """
        self._candidate_rows = candidates
        try:
            return self.fit(data)
        finally:
            self.__dict__.pop("_candidate_rows", None)

    def score_candidates(
        self, user_idx: NDArray[np.int32], item_idx: NDArray[np.int32], prior: NDArray[np.float32] | None
    ) -> NDArray[np.float32]:
        """Logits of (user, item) pairs given as internal indices, with the retriever's standardised
        score when the model was fitted by :meth:`fit_ranker`."""
        return self._logits(user_idx, item_idx, None, prior if getattr(self, "uses_prior_", False) else None)

    def _score(self, user_idx: NDArray[np.int32], item_idx: NDArray[np.int32] | None) -> NDArray[np.float32]:
        items = np.arange(self.n_items_, dtype=np.int64) if item_idx is None else np.asarray(item_idx, np.int64)
        u = np.repeat(np.asarray(user_idx, np.int64), len(items))
        i = np.tile(items, len(user_idx))
        return self._logits(u, i).reshape(len(user_idx), len(items))

    def _score_pairs(self, user_idx: NDArray[np.int32], item_idx: NDArray[np.int32]) -> NDArray[np.float32]:
        return self._logits(user_idx, item_idx)

    def predict_proba(self, users: ArrayLike, items: ArrayLike, timestamps: ArrayLike | None = None) -> NDArray[np.float32]:
        """Click probabilities of (user, item) pairs (external ids).

        Parameters
        ----------
        users, items : sequences of ids of equal length
            Known users and items.
        timestamps : sequence, optional
            The moment of each pair (same unit as the training timestamps).
            Models with a behaviour history (DIN) then use only the training
            positives strictly before it; without it, the whole training history.

        Returns
        -------
        ndarray of float32

        Raises
        ------
        UnknownIdError
            A user or item is not in the training data.
        """
        self._check_fitted()
        uidx, iidx, ts = self._timed_pairs(users, items, timestamps)
        logits = self._logits(uidx, iidx, ts)
        return (1.0 / (1.0 + np.exp(-logits.astype(np.float64)))).astype(np.float32)

    def _timed_pairs(
        self, users: ArrayLike, items: ArrayLike, timestamps: ArrayLike | None
    ) -> tuple[NDArray[np.int32], NDArray[np.int32], NDArray[Any] | None]:
        """Internal indices of (user, item) pairs and their checked timestamps (None without)."""
        uidx, iidx = self._pair_index(users, items)
        ts = None
        if timestamps is not None:
            ts, unit = check_timestamps(timestamps, "timestamps")
            if len(ts) != len(uidx):
                raise DataError(f"timestamps must align with users: expected {len(uidx)} values, got {len(ts)}")
            if unit != self.timestamp_unit_:
                raise DataError(
                    "timestamps must have the training data's type: "
                    + ("datetimes" if self.timestamp_unit_ == "ns" else "numbers")
                    + f"; got {'datetimes' if unit == 'ns' else 'numbers'}"
                )
        return uidx, iidx, ts

    # -- ONNX export ------------------------------------------------------------------------------

    def export_onnx(self, path: str | os.PathLike[str]) -> tuple[Path, Path]:
        """Write the model as a self-contained ONNX graph to ``path`` and its input contract to ``<path>.json``.

        The graph holds the weights and the user / item feature tables; its
        inputs are row indices (``user``, ``item``; DIN adds ``history`` and
        ``history_length``; a Pipeline ranker ``prior``), its outputs float32
        logits (probability = sigmoid). The JSON file holds the id maps, the
        inputs' names, dtypes and shapes, the outputs, the history rule and
        each user's training history: see the README, "Serving deep models
        without Python (ONNX)". Both files are written atomically; the graph
        is checked against the torch network on sample rows first.

        Returns
        -------
        (graph path, JSON path)

        Raises
        ------
        NotFittedError
            The model is not fitted.
        ParameterError
            ``path`` cannot be written.
        MissingDependencyError
            ``onnx`` / ``onnxruntime`` are missing (``pip install "recsys[onnx]"``).

        Examples
        --------
        >>> import json, pathlib, tempfile
        >>> from recsys.models import DeepFM
        >>> from recsys.testing import tiny_interactions
        >>> model = DeepFM(label_threshold=4, epochs=1, hidden_units=[8], show_progress=False).fit(tiny_interactions())
        >>> graph, spec = model.export_onnx(pathlib.Path(tempfile.mkdtemp()) / "deepfm.onnx")
        >>> graph.name, spec.name, [i["name"] for i in json.loads(spec.read_text())["inputs"]]
        ('deepfm.onnx', 'deepfm.onnx.json', ['user', 'item'])
        """
        from recsys.models.deep._onnx import export_onnx

        return export_onnx(self, path)

    def _onnx_network(self) -> Any:
        """The float32 CPU module exported: forward takes the graph inputs in order, returns (B,) or (B, T) logits."""
        from recsys.models.deep._onnx import export_network

        return export_network(self)

    def _onnx_outputs(self) -> dict[str, str]:
        """Graph output names (one per column of the network's logits, in order) and what each means."""
        return {"logit": "the click logit of the (user, item) pair; probability = sigmoid(logit)"}

    # True: a (B, T) network output gives T graph outputs of shape (B,), one per name of _onnx_outputs
    _onnx_column_outputs: ClassVar[bool] = True

    def _onnx_inputs(self) -> list[dict[str, Any]]:
        """The graph's inputs in order: name, dtype, shape and meaning (the JSON contract's ``inputs``)."""
        from recsys.models.deep._onnx import input_spec

        return input_spec(self)

    def _onnx_sample(self, n: int) -> dict[str, NDArray[Any]]:
        """Graph inputs for ``n`` rows, on which the export checks the graph against torch."""
        from recsys.models.deep._onnx import _sample_feed

        return _sample_feed(self, n)

    def _onnx_contract(self) -> dict[str, Any]:
        """The model's part of the JSON contract: id maps, features, history rule."""
        from recsys.models.deep._onnx import click_contract

        return click_contract(self)

    @property
    def train_result_(self) -> dict[str, Any]:
        """The training log: per-epoch loss / validation AUC, best epoch, stop reason, samples/s."""
        self._check_fitted()
        return dict(self.train_log_)


__all__ = ["DeepRecommender"]
