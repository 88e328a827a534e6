"""DeepCTR-Torch DeepFM / DIN fed exactly the fields and histories recsys' models see (an optional peer of the deep benchmark)."""

from __future__ import annotations

import contextlib
import io
import time
from typing import Any

import numpy as np

from recsys.data import Interactions
from recsys.models.deep._samples import HistoryStore
from recsys.models.deep.features import FieldSpec, FieldTables, encode_fields


def available() -> str | None:
    """None when deepctr_torch imports, else the reason it does not."""
    try:
        with contextlib.redirect_stdout(io.StringIO()):  # its version check prints
            import deepctr_torch  # noqa: F401
    except Exception as e:  # pragma: no cover - depends on the environment
        return f"{type(e).__name__}: {e}"
    return None


class DeepCTRData:
    """Field columns (local codes per field) and padded left-aligned histories for DeepCTR-Torch."""

    def __init__(self, data: Interactions, features: list[str], max_len: int, threshold: float) -> None:
        self.tables: FieldTables = encode_fields(data, [FieldSpec.parse(f) for f in features])
        assert data.ratings is not None
        self.store = HistoryStore.from_interactions(data, data.ratings >= threshold)
        self.max_len = max_len
        self.fields = self.tables.fields

    def _columns(self, users: np.ndarray, items: np.ndarray) -> dict[str, np.ndarray]:
        t = self.tables
        out: dict[str, np.ndarray] = {}
        ci = {"user": 0, "item": 0}
        for f in self.fields:
            side, idx = f["side"], (users if f["side"] == "user" else items)
            name = f["name"].replace(".", "_").replace(":", "_").replace("=", "_").replace(",", "_")
            if f["kind"] == "categorical":
                mat = t.user_cat if side == "user" else t.item_cat
                out[name] = (mat[idx, ci[side]] - f["offset"]).astype(np.int64)
                ci[side] += 1
            elif f["kind"] == "multi":
                mat = t.user_multi if side == "user" else t.item_multi
                block = mat[idx, f["start"] : f["stop"]]
                out[name] = np.where(block > 0, block - f["offset"], 0).astype(np.int64)
        return out

    def inputs(self, part: Interactions, *, history: bool) -> dict[str, np.ndarray]:
        users = part.user_index.astype(np.int64)
        items = part.item_index.astype(np.int64)
        cols = self._columns(users, items)
        if history:
            end, length = self.store.lookup(users, part.timestamps, self.max_len)
            pos = end[:, None] - length[:, None] + np.arange(self.max_len)[None, :]
            valid = np.arange(self.max_len)[None, :] < length[:, None]
            hist_items = np.where(valid, self.store.items[np.clip(pos, 0, max(0, len(self.store.items) - 1))], -1)
            hist = self._columns(np.zeros(1, np.int64).repeat(hist_items.size), np.maximum(hist_items, 0).ravel())
            cols["hist_item"] = np.where(valid, hist["item"].reshape(valid.shape), 0)
            genre = [k for k in hist if k.startswith("item_genres_first")]
            for g in genre:
                cols["hist_" + g] = np.where(valid, hist[g].reshape(valid.shape), 0)
            cols["seq_length"] = length.astype(np.int64)
        return cols

    def feature_columns(self, dim: int, *, history: bool) -> tuple[list[Any], list[str]]:
        from deepctr_torch.inputs import SparseFeat, VarLenSparseFeat

        cols: list[Any] = []
        names: list[str] = []
        for f in self.fields:
            name = f["name"].replace(".", "_").replace(":", "_").replace("=", "_").replace(",", "_")
            if f["kind"] == "categorical":
                cols.append(SparseFeat(name, vocabulary_size=f["size"], embedding_dim=dim))
                names.append(name)
            elif f["kind"] == "multi":
                cols.append(
                    VarLenSparseFeat(
                        SparseFeat(name, vocabulary_size=f["size"], embedding_dim=dim),
                        maxlen=f["stop"] - f["start"],
                        combiner="mean",
                    )
                )
        hist_list: list[str] = []
        if history:
            hist_list = ["item"] + [n for n in names if n.startswith("item_genres_first")]
            for n in hist_list:
                size = next(f["size"] for f in self.fields if f["name"].replace(".", "_").replace(":", "_") == n)
                cols.append(
                    VarLenSparseFeat(
                        SparseFeat("hist_" + n, vocabulary_size=size, embedding_dim=dim, embedding_name=n),
                        maxlen=self.max_len,
                        length_name="seq_length",
                    )
                )
        return cols, hist_list


def build(kind: str, data: DeepCTRData, dim: int, hidden: tuple[int, ...], seed: int) -> Any:
    with contextlib.redirect_stdout(io.StringIO()):
        from deepctr_torch.models import DIN, DeepFM

    cols, hist = data.feature_columns(dim, history=kind == "din")
    if kind == "deepfm":
        model = DeepFM(cols, cols, dnn_hidden_units=hidden, seed=seed, device="cpu")
    else:
        model = DIN(cols, hist, dnn_hidden_units=hidden, seed=seed, device="cpu")
    model.compile("adam", "binary_crossentropy")
    return model


def fit(model: Any, x: dict[str, np.ndarray], y: np.ndarray, epochs: int, batch_size: int = 256) -> float:
    """Train and return the seconds it took."""
    t0 = time.perf_counter()
    with contextlib.redirect_stdout(io.StringIO()):
        model.fit(x, y.astype(np.float32), batch_size=batch_size, epochs=epochs, verbose=0)
    return time.perf_counter() - t0


def predict(model: Any, x: dict[str, np.ndarray], batch_size: int = 8192) -> np.ndarray:
    return np.asarray(model.predict(x, batch_size=batch_size)).ravel()
