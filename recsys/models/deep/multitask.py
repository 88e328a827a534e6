"""Multi-task rankers: shared-bottom, MMoE (Ma et al. 2018), PLE (Tang et al. 2020) and ESMM (Ma et al. 2018).

One network learns several tasks of the same (user, item) rows, over the
shared representation of DeepFM or DIN (``bottom``), trained by the one
:class:`~recsys.models.deep.trainer.Trainer` and saved like DeepFM and DIN.

Tasks and their labels, derived from the interactions:

``click`` (binary)
    1 on an interaction, 0 on a sampled non-interacted item (``negative_ratio``
    per interaction, re-drawn every epoch, as DeepFM's implicit mode).
``like`` (binary)
    ``rating >= label_threshold`` on an interaction. On a sampled negative the
    like is not observed: the shared-bottom, MMoE and PLE models mask it there
    (their ``like`` head is P(like | interacted), the conversion rate), while
    ESMM trains ``like`` over the entire space, as pCTCVR = pCTR x pCVR with
    label 0 on the negatives.
``rating`` (regression)
    The rating of an interaction, squared error; masked on sampled negatives.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
from numpy.typing import ArrayLike, NDArray

from recsys._state_spec import Json, Spec, Where
from recsys._utils.params import check_choice, check_float, check_int
from recsys.data import Interactions
from recsys.errors import ArtifactError, DataError, NotSupportedError, ParameterError
from recsys.models.deep._base import CandidateRows, DeepRecommender, _check_units
from recsys.models.deep._towers import MultiTaskNet
from recsys.models.deep.features import FieldTables

# The tasks a multi-task model can learn, and their kind.
TASKS = {"click": "binary", "like": "binary", "rating": "regression"}
_DEFAULT_TASKS = {"click": "binary", "like": "binary"}


def _sigmoid32(z: NDArray[Any]) -> NDArray[np.float64]:
    """Probabilities rounded to float32 (what predict_proba returns), as float64 for products."""
    return (1.0 / (1.0 + np.exp(-np.asarray(z, dtype=np.float64)))).astype(np.float32).astype(np.float64)


class MultiTaskRecommender(DeepRecommender):
    """Base of the multi-task models (see :class:`MMoE` for the parameters)."""

    structure: ClassVar[str] = "shared_bottom"
    esmm: ClassVar[bool] = False
    _no_explanation: ClassVar[str] = (
        "its score is a combination of neural network heads over user, item, feature (and, with the DIN bottom, "
        "attention-pooled history) embeddings; no part of it belongs to one history item"
    )

    _state_spec: ClassVar[dict[str, Spec]] = {"tasks_": Json(types=(list,))}

    def __init__(
        self,
        tasks: dict[str, str] | None = None,
        bottom: str = "deepfm",
        task_weights: dict[str, float] | None = None,
        loss_weighting: str = "fixed",
        rank_by: str | dict[str, float] | None = None,
        monitor: str | None = None,
        label_threshold: float | None = 4.0,
        negative_sampling: str = "uniform",
        negative_ratio: int = 4,
        features: list[str] | None = None,
        embedding_dim: int = 8,
        hidden_units: tuple[int, ...] | list[int] = (128, 64),
        tower_units: tuple[int, ...] | list[int] = (32,),
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
        max_history: int = 50,
        attention_units: tuple[int, ...] | list[int] = (64, 16),
        attention_activation: str = "dice",
        attention_softmax: bool = True,
    ) -> None:
        super().__init__(
            label_threshold=label_threshold,
            negative_sampling=negative_sampling,
            negative_ratio=negative_ratio,
            features=features,
            embedding_dim=embedding_dim,
            hidden_units=hidden_units,
            activation=activation,
            dropout=dropout,
            l2_embedding=l2_embedding,
            l2_dnn=l2_dnn,
            learning_rate=learning_rate,
            batch_size=batch_size,
            epochs=epochs,
            patience=patience,
            validation_fraction=validation_fraction,
            refit=refit,
            time_budget=time_budget,
            seed=seed,
            device=device,
            num_threads=num_threads,
            show_progress=show_progress,
            lazy_embeddings=lazy_embeddings,
        )
        self.tasks = tasks
        self.bottom = bottom
        self.task_weights = task_weights
        self.loss_weighting = loss_weighting
        self.rank_by = rank_by
        self.monitor = monitor
        self.tower_units = tower_units
        self.max_history = max_history
        self.attention_units = attention_units
        self.attention_activation = attention_activation
        self.attention_softmax = attention_softmax

    # -- structure ------------------------------------------------------------------------------

    @property  # type: ignore[override]
    def uses_history(self) -> bool:  # type: ignore[override]
        return self.bottom == "din"

    @property
    def max_history_len(self) -> int:
        return int(self.max_history) if self.bottom == "din" else 0

    def _inputs(self) -> tuple[str, ...]:
        names = ("user", "item", "end", "length") if self.bottom == "din" else ("user", "item")
        return names + (("prior",) if getattr(self, "uses_prior_", False) else ())

    def _task_dict(self) -> dict[str, str]:
        return dict(_DEFAULT_TASKS if self.tasks is None else self.tasks)

    def _structure_kwargs(self) -> dict[str, Any]:
        """The structure's own sizes (experts, levels)."""
        return {}

    # -- parameters -------------------------------------------------------------------------------

    def _validate_params(self) -> None:
        super()._validate_params()
        owner = type(self).__name__
        tasks = self._task_dict()
        if self.tasks is not None and (not isinstance(self.tasks, dict) or not self.tasks):
            raise ParameterError(
                f"The 'tasks' parameter of {owner} must be a non-empty dict of task name -> kind, e.g. "
                f"{{'click': 'binary', 'like': 'binary', 'rating': 'regression'}}. Got {self.tasks!r} instead."
            )
        for name, kind in tasks.items():
            if name not in TASKS:
                raise ParameterError(
                    f"The 'tasks' parameter of {owner} names an unknown task {name!r}; the tasks are "
                    f"{', '.join(f'{n!r} ({k})' for n, k in TASKS.items())}."
                )
            if kind not in ("binary", "regression"):
                raise ParameterError(
                    f"The 'tasks' parameter of {owner} gives task {name!r} the unknown kind {kind!r}; expected 'binary' or 'regression'."
                )
            if kind != TASKS[name]:
                raise ParameterError(f"The 'tasks' parameter of {owner}: task {name!r} is {TASKS[name]}, not {kind}.")
        if self.esmm and not {"click", "like"} <= set(tasks):
            raise ParameterError(
                f"The 'tasks' parameter of {owner} must hold 'click' and 'like' (pCTCVR = pCTR x pCVR); got {sorted(tasks)}."
            )
        if "like" in tasks and self.label_threshold is None:
            raise ParameterError(f"{owner}: the 'like' task is rating >= label_threshold; label_threshold must be a number, not None.")
        check_choice(owner, "bottom", self.bottom, ("deepfm", "din"))
        check_choice(owner, "loss_weighting", self.loss_weighting, ("fixed", "uncertainty"))
        if self.task_weights is not None:
            if not isinstance(self.task_weights, dict):
                raise ParameterError(
                    f"The 'task_weights' parameter of {owner} must be a dict of task name -> weight >= 0. Got {self.task_weights!r} instead."
                )
            for name, w in self.task_weights.items():
                if name not in tasks:
                    raise ParameterError(f"The 'task_weights' parameter of {owner} names {name!r}, which is not one of its tasks {sorted(tasks)}.")
                check_float(owner, f"task_weights[{name!r}]", w, low=0.0)
        heads = self._head_names(tasks)
        if self.rank_by is not None:
            if isinstance(self.rank_by, str):
                if self.rank_by not in heads:
                    raise ParameterError(f"The 'rank_by' parameter of {owner} names {self.rank_by!r}; its heads are {heads}.")
            elif isinstance(self.rank_by, dict) and self.rank_by:
                for name, w in self.rank_by.items():
                    if name not in heads or heads_kind(tasks, name) != "binary":
                        raise ParameterError(
                            f"The 'rank_by' parameter of {owner} weights {name!r}; expected binary heads among {heads}."
                        )
                    check_float(owner, f"rank_by[{name!r}]", w, low=0.0)
            else:
                raise ParameterError(
                    f"The 'rank_by' parameter of {owner} must be None, a head name or a dict of binary head -> exponent. Got {self.rank_by!r} instead."
                )
        if self.monitor is not None and self.monitor not in tasks:
            raise ParameterError(f"The 'monitor' parameter of {owner} names {self.monitor!r}, which is not one of its tasks {sorted(tasks)}.")
        _check_units(owner, "tower_units", self.tower_units)
        check_int(owner, "max_history", self.max_history, low=1)
        _check_units(owner, "attention_units", self.attention_units)
        check_choice(owner, "attention_activation", self.attention_activation, ("dice", "prelu", "relu", "sigmoid"))

    def _head_names(self, tasks: dict[str, str] | None = None) -> list[str]:
        """Every name ``task=`` accepts: the tasks, and ESMM's conditional ``cvr`` head."""
        names = list(self._task_dict() if tasks is None else tasks)
        return names + (["cvr"] if self.esmm else [])

    # -- training rows ------------------------------------------------------------------------------

    def _labels(self, part: Interactions) -> NDArray[np.float32]:
        """One column per task on the interactions: click 1, like, rating."""
        cols = []
        for name in self._task_dict():
            if name == "click":
                cols.append(np.ones(part.nnz, np.float32))
            else:
                assert part.ratings is not None
                r = np.asarray(part.ratings, np.float32)
                cols.append((r >= float(self.label_threshold)).astype(np.float32) if name == "like" else r)  # type: ignore[arg-type]
        return np.stack(cols, 1) if cols else np.zeros((part.nnz, 0), np.float32)

    def _history_labels(self, part: Interactions) -> NDArray[np.float32]:
        """DIN's history holds the liked interactions (as single-task DIN with a label threshold), or
        every interaction without a like task."""
        if "like" in self._task_dict():
            assert part.ratings is not None
            return (np.asarray(part.ratings) >= float(self.label_threshold)).astype(np.float32)  # type: ignore[arg-type]
        return np.ones(part.nnz, np.float32)

    def _samples_negatives(self) -> bool:
        return "click" in self._task_dict()

    def _negative_label(self) -> NDArray[np.float32]:
        """A sampled negative: not clicked; its like is 0 over ESMM's entire space, else unobserved (NaN);
        its rating unobserved."""
        out = []
        for name in self._task_dict():
            out.append(0.0 if name == "click" or (name == "like" and self.esmm) else np.nan)
        return np.array(out, np.float32)

    def _candidate_labels(self, data: Interactions, candidates: CandidateRows) -> NDArray[np.float32]:
        """A retriever's candidate: clicked when it is among the held-out interactions; like and
        rating from that interaction's rating (as on a sampled negative otherwise)."""
        hit = np.asarray(candidates.labels) > 0.5
        ratings = None
        if data.ratings is not None:
            ratings = np.asarray(data.matrix("csr", "rating")[candidates.users, candidates.items], np.float32).ravel()
        neg = self._negative_label()
        cols = []
        for t, name in enumerate(self._task_dict()):
            if name == "click":
                cols.append(hit.astype(np.float32))
                continue
            assert ratings is not None
            value = (ratings >= float(self.label_threshold)).astype(np.float32) if name == "like" else ratings  # type: ignore[arg-type]
            cols.append(np.where(hit, value, neg[t]).astype(np.float32))
        return np.stack(cols, 1)

    def _fit(self, data: Interactions) -> None:
        owner = type(self).__name__
        tasks = self._task_dict()
        for name in tasks:
            if name != "click" and data.ratings is None:
                raise DataError(f"{owner}: task {name!r} ({tasks[name]}) needs ratings; these interactions have none")
        if data.ratings is not None and "rating" in tasks:
            self._rating_mean = float(np.mean(data.ratings))
        if "like" in tasks and "_candidate_rows" not in self.__dict__:
            fit_part, _ = self._split(data)
            like = self._labels(fit_part)[:, list(tasks).index("like")]
            if len(np.unique(like)) < 2:
                raise DataError(
                    f"{owner}: the binary task 'like' (rating >= {self.label_threshold}) has only label {int(like[0]) if len(like) else '-'} "
                    "in the training split: it cannot be learned; change label_threshold or drop the task"
                )
        try:
            super()._fit(data)
        finally:
            self.__dict__.pop("_rating_mean", None)
        self.tasks_ = list(tasks)

    def _check_loaded_state(self, state: dict[str, Any], where: Where, dims: dict[str, int] | None = None) -> dict[str, int]:
        if state.get("tasks_") != list(self._task_dict()):
            raise ArtifactError(
                f"{where('tasks_')}: field 'tasks_' is {state.get('tasks_')!r:.80}; the model's tasks parameter gives {list(self._task_dict())}"
            )
        return super()._check_loaded_state(state, where, dims)

    def _build_module(self, tables: FieldTables, history_items: NDArray[np.int64] | None, prior: bool = False) -> MultiTaskNet:
        from recsys.models.deep.deepfm import DeepFMNet
        from recsys.models.deep.din import DINNet

        dim, units = self.embedding_dim, tuple(self.hidden_units)
        act, dropout, l2 = self.activation, float(self.dropout), float(self.l2_embedding)
        bottom: Any
        if self.bottom == "din":
            assert history_items is not None
            # DIN's defaults: softmax attention, first-order terms and the FM term in the wide part
            bottom = DINNet(
                tables, history_items, dim, units, act, dropout, l2, tuple(self.attention_units),
                self.attention_activation, bool(self.attention_softmax), True, True, head=False,
            )
        else:
            bottom = DeepFMNet(tables, dim, units, act, dropout, l2, head=False)
        tasks = self._task_dict()
        weights = self.task_weights or {}
        monitor = self.monitor or ("like" if "like" in tasks else next(iter(tasks)))
        return MultiTaskNet(
            bottom,
            tuple(tasks.values()),
            tuple(tasks),
            self.structure,
            units,
            tuple(self.tower_units),
            act,
            dropout,
            esmm=self.esmm,
            task_weights=tuple(float(weights.get(n, 1.0)) for n in tasks),
            uncertainty=self.loss_weighting == "uncertainty",
            monitor=list(tasks).index(monitor),
            prior=prior,
            rating_mean=float(self.__dict__.get("_rating_mean", 0.0)),
            **self._structure_kwargs(),
        )

    # -- inference ------------------------------------------------------------------------------------

    def _output_shape(self) -> tuple[int, ...]:
        return (len(self._task_dict()),)

    def _forward(self, module: Any, batch: dict[str, Any]) -> Any:
        return module.heads(**batch)

    def _head_logits(
        self, users: NDArray[Any], items: NDArray[Any], timestamps: NDArray[Any] | None = None, prior: NDArray[Any] | None = None
    ) -> NDArray[np.float32]:
        return super()._logits(users, items, timestamps, prior)

    def _head_values(self, heads: NDArray[np.float32], name: str) -> NDArray[np.float64]:
        """A head's probability (binary) or value (regression) from the towers' outputs."""
        tasks = list(self._task_dict())
        if name == "cvr":
            return _sigmoid32(heads[:, tasks.index("like")])
        z = heads[:, tasks.index(name)]
        if self._task_dict()[name] == "regression":
            return z.astype(np.float64)
        if self.esmm and name == "like":  # pCTCVR = pCTR x pCVR, of the float32 values predict_proba gives
            return _sigmoid32(heads[:, tasks.index("click")]) * _sigmoid32(z)
        return _sigmoid32(z)

    def _combined(self, heads: NDArray[np.float32], rank_by: str | dict[str, float] | None) -> NDArray[np.float64]:
        tasks = self._task_dict()
        if isinstance(rank_by, str):
            return self._head_values(heads, rank_by)
        if rank_by is None:  # the product of the binary heads (ESMM: pCTR x pCVR)
            names = [n for n, k in tasks.items() if k == "binary" and not (self.esmm and n == "like")]
            rank_by = {n: 1.0 for n in names + (["cvr"] if self.esmm else [])}
        out = np.ones(len(heads), np.float64)
        for name, w in rank_by.items():
            out *= self._head_values(heads, name) ** float(w)
        return out

    def _logits(
        self, users: NDArray[Any], items: NDArray[Any], timestamps: NDArray[Any] | None = None, prior: NDArray[Any] | None = None
    ) -> NDArray[np.float32]:
        """The ranking score of each pair: the ``rank_by`` combination of the heads."""
        return self._combined(self._head_logits(users, items, timestamps, prior), self.rank_by).astype(np.float32)

    def _check_head(self, task: str, want: str) -> None:
        heads = self._head_names()
        if task not in heads:
            raise ParameterError(f"{type(self).__name__} has no head {task!r}: its heads are {heads}")
        kind = heads_kind(self._task_dict(), task)
        if kind != want:
            other = "predict" if kind == "regression" else "predict_proba"
            raise ParameterError(f"{type(self).__name__}: head {task!r} is {kind}; use {other}(..., task={task!r})")

    def predict_proba(
        self, users: ArrayLike, items: ArrayLike, timestamps: ArrayLike | None = None, task: str | None = None
    ) -> NDArray[np.float32]:
        """Probabilities of a binary head for (user, item) pairs (external ids).

        Parameters
        ----------
        users, items : sequences of ids of equal length
        timestamps : sequence, optional
            The moment of each pair (DIN bottom: the history is the training
            likes strictly before it; without, the whole training history).
        task : str, optional
            ``"click"``, ``"like"`` (ESMM: pCTCVR = pCTR x pCVR), or ESMM's
            ``"cvr"`` (P(like | click)). None: the product of the binary heads
            (ESMM: pCTR x pCVR), the default ranking.

        Returns
        -------
        ndarray of float32

        Raises
        ------
        ParameterError
            ``task`` names a head the model does not have, or a regression head.
        """
        self._check_fitted()
        if task is not None:
            self._check_head(task, "binary")
        uidx, iidx, ts = self._timed_pairs(users, items, timestamps)
        heads = self._head_logits(uidx, iidx, ts)
        values = self._combined(heads, None) if task is None else self._head_values(heads, task)
        return values.astype(np.float32)

    def predict(  # type: ignore[override]
        self, users: ArrayLike, items: ArrayLike, timestamps: ArrayLike | None = None, task: str | None = None
    ) -> NDArray[np.float32]:
        """Predicted values of the regression head (``rating``) for (user, item) pairs (external ids).

        Raises
        ------
        NotSupportedError
            The model has no regression task.
        ParameterError
            ``task`` names a head the model does not have, or a binary head.
        """
        self._check_fitted()
        regression = [n for n, k in self._task_dict().items() if k == "regression"]
        if task is None:
            if not regression:
                raise NotSupportedError(
                    f"{type(self).__name__} has no regression task (tasks: {', '.join(self._task_dict())}): "
                    "predict needs tasks={..., 'rating': 'regression'}; use predict_proba for the binary heads"
                )
            task = regression[0]
        self._check_head(task, "regression")
        uidx, iidx, ts = self._timed_pairs(users, items, timestamps)
        return self._head_values(self._head_logits(uidx, iidx, ts), task).astype(np.float32)

    def _onnx_network(self) -> Any:
        if not self.uses_history:
            return super()._onnx_network()
        from recsys.models.deep._onnx import PaddedHistoryMultiTask, cpu_copy

        return PaddedHistoryMultiTask(cpu_copy(self), self.max_history_len)

    def _onnx_outputs(self) -> dict[str, str]:
        kinds = self._task_dict()
        out = {}
        for name in self.tasks_:
            if kinds[name] == "regression":
                out[name] = f"the {name} head's prediction (as predict(task={name!r}))"
            elif self.esmm and name == "like":
                out[name] = "the logit of pCTCVR = pCTR x pCVR over the entire space; probability = sigmoid (as predict_proba(task='like'))"
            else:
                out[name] = f"the {name} logit; probability = sigmoid (as predict_proba(task={name!r}))"
        return out


def heads_kind(tasks: dict[str, str], name: str) -> str:
    """The kind of a head (ESMM's ``cvr`` is binary)."""
    return "binary" if name == "cvr" else tasks[name]


def _doc(summary: str, example: str, extra: str = "") -> str:
    """A model's docstring: its summary, the shared parameters (with its own ``extra`` ones), its example."""
    return summary + _DOC_PARAMS.replace("    **other parameters", extra + "    **other parameters") + example


_DOC_PARAMS = """
    Parameters
    ----------
    tasks : dict of str -> str, default {"click": "binary", "like": "binary"}
        The tasks in output-column order: ``"click"`` (binary), ``"like"``
        (binary, rating >= label_threshold), ``"rating"`` (regression); see
        :mod:`recsys.models.deep.multitask` for the labels.
    bottom : {"deepfm", "din"}, default "deepfm"
        The shared representation: DeepFM's field embeddings (the wide part:
        bias, first order and FM term), or DIN's user fields, target and
        attention interest over the user's liked history (DIN's defaults:
        softmax attention, first order and FM term). Every head adds the wide
        part with its own learned scale.
    task_weights : dict of str -> float, optional
        Weight of each task's loss (default 1).
    loss_weighting : {"fixed", "uncertainty"}, default "fixed"
        ``"uncertainty"``: learned per-task log-variances (Kendall et al. 2018)
        on top of ``task_weights``.
    rank_by : str or dict of str -> float, optional
        What ``recommend`` / ``score`` rank by: a head name (its probability,
        or the rating), or a dict of binary heads -> exponents (their
        weighted product). Default: the product of the binary heads' probabilities
        (ESMM: pCTR x pCVR).
    monitor : str, optional
        The task whose validation metric (AUC, or RMSE for a regression task)
        early stopping follows (default: ``like`` when present, else the first task).
    label_threshold : float or None, default 4.0
        A like is ``rating >= label_threshold`` (needed by the ``like`` task).
    hidden_units : list of int, default (128, 64)
        Each expert's MLP (the shared bottom's for :class:`SharedBottom`; the
        first layers of each tower for :class:`ESMM`).
    tower_units : list of int, default (32,)
        Each task tower's hidden layers (before its output unit).
    max_history, attention_units, attention_activation, attention_softmax
        As :class:`~recsys.models.DIN` (``bottom="din"`` only).
    **other parameters
        As :class:`~recsys.models.DeepFM` (``negative_sampling`` and
        ``negative_ratio`` draw the ``click`` negatives).

    Attributes
    ----------
    tasks_ : list of str
        The task names in the order of the network's output columns.
    module_ : torch.nn.Module
        The trained :class:`~recsys.models.deep._towers.MultiTaskNet`: its
        ``forward`` takes the inputs of DeepFM's (``user, item``) or DIN's
        (``user, item, end, length``) network, optionally ``prior``, and
        returns ``(logits (B, T), penalty)``, one column per task.
    train_log_ : dict
        As DeepFM's; the validation metrics are per task (``val_like_auc``,
        ``val_rating_rmse``, ...) and ``val_score`` the monitored one.
"""


class SharedBottom(MultiTaskRecommender):
    __doc__ = _doc(
        """Shared-bottom multi-task ranker: one MLP over the shared representation, one tower per task.
    """,
        """
    Examples
    --------
    >>> from recsys.testing import tiny_interactions
    >>> model = SharedBottom(epochs=2, hidden_units=[16], num_threads=1, show_progress=False).fit(tiny_interactions())
    >>> model.tasks_, model.predict_proba([0], [1], task="like").shape
    (['click', 'like'], (1,))
    """,
    )

    structure: ClassVar[str] = "shared_bottom"
    _state_spec: ClassVar[dict[str, Spec]] = {}


class ESMM(MultiTaskRecommender):
    __doc__ = _doc(
        """Entire Space Multi-task Model (Ma et al. 2018): pCTCVR = pCTR x pCVR.

    Two towers over the shared embeddings, CTR and CVR (here: like given
    click). Both losses are taken over the entire space (every interaction and
    every sampled negative): the click loss on pCTR, the like loss on pCTCVR,
    so pCVR is learned without the sample-selection bias of training it on
    clicked rows alone. Needs the tasks ``click`` and ``like``; ``rating`` may
    be added (a third tower, masked to interactions).
    """,
        """
    Examples
    --------
    >>> from recsys.testing import tiny_interactions
    >>> model = ESMM(epochs=2, hidden_units=[16], num_threads=1, show_progress=False).fit(tiny_interactions())
    >>> ctr, cvr, ctcvr = (model.predict_proba([0], [1], task=t) for t in ("click", "cvr", "like"))
    >>> bool(ctcvr[0] == np.float32(float(ctr[0]) * float(cvr[0])))
    True
    """,
    )

    structure: ClassVar[str] = "esmm"
    esmm: ClassVar[bool] = True
    _state_spec: ClassVar[dict[str, Spec]] = {}


class MMoE(MultiTaskRecommender):
    __doc__ = _doc(
        """Multi-gate Mixture-of-Experts (Ma et al. 2018): ``n_experts`` shared experts, one softmax gate
    per task over them, one tower per task.
    """,
        """
    Examples
    --------
    >>> from recsys.testing import tiny_interactions
    >>> model = MMoE(tasks={"click": "binary", "rating": "regression"}, epochs=2, hidden_units=[16],
    ...              num_threads=1, show_progress=False).fit(tiny_interactions())
    >>> model.predict([0], [1]).shape
    (1,)
    """,
        """    n_experts : int >= 1, default 4
        Shared experts.
""",
    )

    structure: ClassVar[str] = "mmoe"
    _state_spec: ClassVar[dict[str, Spec]] = {}

    def __init__(
        self,
        tasks: dict[str, str] | None = None,
        bottom: str = "deepfm",
        task_weights: dict[str, float] | None = None,
        loss_weighting: str = "fixed",
        rank_by: str | dict[str, float] | None = None,
        monitor: str | None = None,
        label_threshold: float | None = 4.0,
        negative_sampling: str = "uniform",
        negative_ratio: int = 4,
        features: list[str] | None = None,
        embedding_dim: int = 8,
        hidden_units: tuple[int, ...] | list[int] = (128, 64),
        tower_units: tuple[int, ...] | list[int] = (32,),
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
        max_history: int = 50,
        attention_units: tuple[int, ...] | list[int] = (64, 16),
        attention_activation: str = "dice",
        attention_softmax: bool = True,
        n_experts: int = 4,
    ) -> None:
        params = dict(locals())
        super().__init__(**{k: v for k, v in params.items() if k not in ("self", "__class__", "n_experts")})
        self.n_experts = n_experts

    def _validate_params(self) -> None:
        super()._validate_params()
        check_int(type(self).__name__, "n_experts", self.n_experts, low=1)

    def _structure_kwargs(self) -> dict[str, Any]:
        return {"n_experts": int(self.n_experts)}


class PLE(MultiTaskRecommender):
    __doc__ = _doc(
        """Progressive Layered Extraction (Tang et al. 2020): ``levels`` extraction layers, each with
    ``n_experts`` shared experts and ``n_task_experts`` experts per task; a task's gate mixes its own
    and the shared experts, a shared gate (all but the last layer) mixes all of them for the next layer.
    """,
        """
    Examples
    --------
    >>> from recsys.testing import tiny_interactions
    >>> model = PLE(levels=2, epochs=2, hidden_units=[16], num_threads=1, show_progress=False).fit(tiny_interactions())
    >>> model.score([0, 1], [2, 3]).shape
    (2,)
    """,
        """    n_experts : int >= 1, default 2
        Shared experts per level.
    n_task_experts : int >= 1, default 1
        Experts per task per level.
    levels : int >= 1, default 2
        Extraction layers (1: CGC, the single-level PLE).
""",
    )

    structure: ClassVar[str] = "ple"
    _state_spec: ClassVar[dict[str, Spec]] = {}

    def __init__(
        self,
        tasks: dict[str, str] | None = None,
        bottom: str = "deepfm",
        task_weights: dict[str, float] | None = None,
        loss_weighting: str = "fixed",
        rank_by: str | dict[str, float] | None = None,
        monitor: str | None = None,
        label_threshold: float | None = 4.0,
        negative_sampling: str = "uniform",
        negative_ratio: int = 4,
        features: list[str] | None = None,
        embedding_dim: int = 8,
        hidden_units: tuple[int, ...] | list[int] = (128, 64),
        tower_units: tuple[int, ...] | list[int] = (32,),
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
        max_history: int = 50,
        attention_units: tuple[int, ...] | list[int] = (64, 16),
        attention_activation: str = "dice",
        attention_softmax: bool = True,
        n_experts: int = 2,
        n_task_experts: int = 1,
        levels: int = 2,
    ) -> None:
        params = dict(locals())
        own = ("self", "__class__", "n_experts", "n_task_experts", "levels")
        super().__init__(**{k: v for k, v in params.items() if k not in own})
        self.n_experts = n_experts
        self.n_task_experts = n_task_experts
        self.levels = levels

    def _validate_params(self) -> None:
        super()._validate_params()
        owner = type(self).__name__
        for name in ("n_experts", "n_task_experts", "levels"):
            check_int(owner, name, getattr(self, name), low=1)

    def _structure_kwargs(self) -> dict[str, Any]:
        return {"n_experts": int(self.n_experts), "n_task_experts": int(self.n_task_experts), "levels": int(self.levels)}


__all__ = ["ESMM", "MMoE", "MultiTaskRecommender", "PLE", "SharedBottom", "TASKS"]
