"""An artifact fuzzer: mutate saved models, load each in a worker process, expect ArtifactError or the same answers.

Every exported model class (the contract cases of :mod:`recsys.testing`) is
fitted once on tiny data and saved once. A *case* copies one artifact and
applies one mutation (byte flips, changed shapes or dtypes, out-of-range
values, edited JSON, links, traversal paths, removed or added files), with
the manifest's hashes recomputed for about half of the cases so that the
structural checks, not the hashes, have to catch it. A long-lived worker
process (:func:`worker_main`) loads the mutated artifact and, when it loads,
recommends for a few users. A case passes when the worker answers
``ArtifactError``, or answers exactly the recommendations of the unmutated
artifact (a harmless mutation); a crash of the worker (segfault, abort), any
other exception, a hang or different recommendations fail the case.

Mutations that make a *valid* different model (a changed float weight with a
recomputed hash, an edited hyper-parameter in the manifest, which no hash
protects) are not generated: nothing but the user can tell them from an
intended model, so the oracle would be wrong, not the loader.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import queue
import select
import shutil
import subprocess
import sys
import tempfile
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

KINDS = (
    "npy_byte_flip",
    "npy_header_flip",
    "npy_shape",
    "npy_dtype",
    "npy_values",
    "npy_object",
    "npz_for_npy",
    "json_byte_flip",
    "json_value",
    "json_key",
    "json_deep",
    "file_ref",
    "symlink",
    "special_file",
    "traversal",
    "remove_file",
    "add_file",
)
# Kinds whose every case must be refused (the mutated artifact would otherwise read something it must not).
MUST_FAIL = frozenset({"npy_object", "npz_for_npy", "symlink", "special_file", "traversal"})
USERS = 3
K = 5


# -- the artifacts ---------------------------------------------------------------------------------


def _variants() -> dict[str, Callable[[], Any]]:
    """Fitted models beyond the contract cases: state the defaults never write (approximate FAISS
    indexes, explicit-feedback baselines, string and mixed int/string id maps)."""
    import pandas as pd

    from recsys.data import Interactions
    from recsys.models import ALS, ItemKNN, UserKNN
    from recsys.testing._data import tiny_frames, tiny_interactions

    def als(kind: str, **params: Any) -> Callable[[], Any]:
        def make() -> Any:
            m = ALS(n_factors=4, reg=1.0, num_threads=1, show_progress=False).fit(tiny_interactions())
            m.build_index(kind, **params)
            return m

        return make

    def string_ids() -> Any:
        df, _, _ = tiny_frames()
        df = df.assign(user="u" + df["user"].astype(str), item="i" + df["item"].astype(str))
        return ItemKNN(k=10, feedback="explicit").fit(Interactions.from_frame(df, rating_col="rating", timestamp_col="timestamp"))

    def mixed_ids() -> Any:
        m = ALS(n_factors=4, reg=1.0, num_threads=1, show_progress=False).fit(tiny_interactions())
        m.partial_fit_users(Interactions.from_frame(pd.DataFrame({"user": ["new-a", "new-b"], "item": [1, 2]})))
        return m

    return {
        "ALS+hnsw": als("hnsw"),
        "ALS+ivf": als("ivf", nlist=4),
        "ItemKNN+explicit+str-ids": string_ids,
        "UserKNN+explicit": lambda: UserKNN(k=5, feedback="explicit").fit(tiny_interactions()),
        "ALS+mixed-ids": mixed_ids,
    }


VARIANTS = ("ALS+hnsw", "ALS+ivf", "ItemKNN+explicit+str-ids", "UserKNN+explicit", "ALS+mixed-ids")


def model_names() -> list[str]:
    """Every exported model (its contract case) plus the variants."""
    from recsys.testing._cases import CONTRACT_CASES

    return list(CONTRACT_CASES) + list(VARIANTS)


def build_artifacts(root: Path, names: list[str] | None = None) -> dict[str, Path]:
    """Fit every contract case and variant (or ``names``) once and save it under ``root``; name -> artifact path."""
    import logging

    from recsys.testing._cases import CONTRACT_CASES

    logging.getLogger("faiss").setLevel(logging.ERROR)
    variants = _variants()
    out: dict[str, Path] = {}
    for name in model_names():
        if names is not None and name not in names:
            continue
        if name in CONTRACT_CASES:
            case = CONTRACT_CASES[name]
            model = case.factory().fit(case.data())
        else:
            model = variants[name]()
        out[name] = model.save(root / name)
    return out


# -- mutations --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Case:
    """One fuzz case: which artifact, which mutation, its random seed and how hashes are treated.

    ``integrity``: ``"stale"`` leaves the manifest's hashes (so verify must catch any change to a
    listed file), ``"rehash"`` recomputes them, ``"noverify"`` loads with ``verify=False``.
    """

    model: str
    kind: str
    seed: int
    integrity: str

    def label(self) -> str:
        return f"{self.model}/{self.kind}/{self.integrity}/seed={self.seed}"


@dataclass
class Applied:
    """What a mutation did (for the report) and what outcome it allows."""

    description: str
    must_fail: bool = False
    verify: bool = True


def _sha(path: Path) -> dict[str, Any]:
    data = path.read_bytes()
    return {"sha256": hashlib.sha256(data).hexdigest(), "size": len(data)}


def _npy_files(art: Path) -> list[str]:
    return sorted(p.relative_to(art).as_posix() for p in (art / "arrays").glob("*.npy"))


def _header_len(raw: bytes) -> int:
    major = raw[6] if len(raw) > 6 else 1
    if major == 1:
        return 10 + int.from_bytes(raw[8:10], "little")
    return 12 + int.from_bytes(raw[8:12], "little")


def _id_files(state: Any) -> set[str]:
    """Files of id maps: their values are data (any id is valid), so value mutations avoid them."""
    out: set[str] = set()
    if isinstance(state, dict):
        if "__idmap__" in state:
            out |= {v for k, v in state.items() if k in ("ids", "bytes") and isinstance(v, str)}
        for v in state.values():
            out |= _id_files(v)
    elif isinstance(state, list):
        for v in state:
            out |= _id_files(v)
    return out


def _json_paths(node: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [prefix]
    if isinstance(node, dict):
        for k, v in node.items():
            out += _json_paths(v, prefix + (k,))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            out += _json_paths(v, prefix + (i,))
    return out


def _pick_path(rng: np.random.Generator, doc: Any) -> tuple[Any, ...]:
    """A node of ``doc``: half the time a shallow one (an attribute, an entry of a nested model's state),
    which a uniform pick among the many leaves of logs and configs would rarely reach."""
    paths = [p for p in _json_paths(doc) if p]
    shallow = [p for p in paths if len(p) <= 2 or (len(p) <= 4 and p[-2] == "state")]
    pool = shallow if shallow and rng.random() < 0.5 else paths
    return pool[int(rng.integers(len(pool)))]


def _get(node: Any, path: tuple[Any, ...]) -> Any:
    for p in path:
        node = node[p]
    return node


def _set(node: Any, path: tuple[Any, ...], value: Any) -> None:
    for p in path[:-1]:
        node = node[p]
    node[path[-1]] = value


def _is_params_path(doc: str, path: tuple[Any, ...]) -> bool:
    """Hyper-parameters (manifest ``model.params``, nested ``__model__`` configs): any valid value there is
    a different valid model, so only type-changing edits go there."""
    return (doc == "manifest.json" and path[:2] == ("model", "params")) or "__model__" in path or "__itemindex__" in path


_ODD_VALUES: list[Any] = [None, True, False, "x", "", 0, -1, 1.5, -1e308, 10**30, [], {}, [[[]]], {"a": 1}, "arrays/../manifest.json"]


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _odd_value(rng: np.random.Generator, old: Any) -> Any:
    """A value of another JSON type (a number never becomes another number: that is a valid edit)."""
    choices = [v for v in _ODD_VALUES if type(v) is not type(old) and not (_is_number(v) and _is_number(old))]
    return choices[int(rng.integers(len(choices)))]


def mutate(art: Path, case: Case, outside: Path) -> Applied:
    """Apply ``case``'s mutation to the artifact copy ``art`` (``outside`` is a scratch dir beside it)."""
    rng = np.random.default_rng(case.seed)
    manifest = json.loads((art / "manifest.json").read_text())
    state = json.loads((art / "state.json").read_text())
    npys = _npy_files(art)
    ids = _id_files(state)
    rehash = case.integrity in ("rehash", "noverify")
    pick = lambda seq: seq[int(rng.integers(len(seq)))]  # noqa: E731
    kind = case.kind
    desc: str
    must_fail = kind in MUST_FAIL

    if kind in ("npy_byte_flip", "npy_header_flip"):
        rel = pick(npys)
        raw = bytearray((art / rel).read_bytes())
        hl = _header_len(bytes(raw))
        # data bytes only when the hash stays stale: with a recomputed hash a flipped weight is a valid model
        hi = len(raw) if (kind == "npy_byte_flip" and not rehash) else min(hl, len(raw))
        n = int(rng.integers(1, 4))
        pos = sorted(int(p) for p in rng.integers(0, hi, size=n))
        for p in pos:
            raw[p] ^= int(rng.integers(1, 256))
        (art / rel).write_bytes(bytes(raw))
        desc = f"xor bytes {pos} of {rel}"
    elif kind == "npy_shape":
        rel = pick(npys)
        a = np.load(art / rel)
        op = int(rng.integers(5))
        if op == 0 and a.ndim and a.shape[0]:
            b = a[:-1]
        elif op == 1 and a.ndim:
            b = np.concatenate([a, a[-1:] if a.shape[0] else np.zeros((1,) + a.shape[1:], a.dtype)])
        elif op == 2:
            b = a.reshape(-1)[:0]
        elif op == 3:
            b = a[None, ...]
        else:
            b = a.reshape(-1) if a.ndim != 1 else a.reshape(1, -1)
        if b.shape == a.shape:
            b = a[None, ...]
        np.save(art / rel, b)
        desc = f"{rel}: shape {a.shape} -> {b.shape}"
    elif kind == "npy_dtype":
        rel = pick(npys)
        a = np.load(art / rel)
        target = pick(["float16", "float32", "float64", "int8", "int32", "int64", "uint8", "bool", ">f4", ">i8", "complex64"])
        b = a.astype(target) if np.dtype(target) != a.dtype else a.astype(a.dtype.newbyteorder(">"))
        np.save(art / rel, b)
        desc = f"{rel}: dtype {a.dtype.str} -> {b.dtype.str}"
    elif kind == "npy_values":
        rel = pick(npys)
        a = np.load(art / rel).copy()
        if a.size == 0:
            np.save(art / rel, np.zeros(1, a.dtype))
            desc = f"{rel}: empty -> one element"
        else:
            flat = a.reshape(-1)
            i = int(rng.integers(flat.size))
            if rel in ids and a.dtype.kind in "iu":
                j = int(rng.integers(flat.size))
                j = j if j != i else (i + 1) % flat.size
                if flat.size == 1:
                    flat[i] = flat[i]
                    desc = f"{rel}: single id unchanged"
                else:
                    flat[i] = flat[j]
                    desc = f"{rel}: id [{i}] duplicates [{j}]"
            elif a.dtype.kind == "f":
                v = pick([np.nan, np.inf, -np.inf])
                flat[i] = v
                desc = f"{rel}[{i}] = {v}"
            elif a.dtype == np.uint8:  # text bytes or flags: 0xff is never UTF-8 and never a flag
                flat[i] = 0xFF
                desc = f"{rel}[{i}] = 0xff"
            elif a.dtype.kind in "iu" and "timestamps" in rel:
                flat[i] = flat[i]
                desc = f"{rel}: timestamps are data (unchanged)"
            else:
                info = np.iinfo(a.dtype)
                v = pick([-1, -(2**31), 10**8, 2**31 - 1, int(info.max), int(info.min)])
                v = int(np.clip(v, info.min, info.max))
                flat[i] = v
                desc = f"{rel}[{i}] = {v}"
            np.save(art / rel, a)
    elif kind == "npy_object":
        rel = pick(npys)
        np.save(art / rel, np.array([{"a": 1}, "x"], dtype=object), allow_pickle=True)
        desc = f"{rel}: object array (pickle)"
    elif kind == "npz_for_npy":
        rel = pick(npys)
        a = np.load(art / rel)
        tmp = outside / "x.npz"
        np.savez(tmp, a)
        shutil.move(tmp, art / rel)
        desc = f"{rel}: replaced by an .npz holding it"
    elif kind == "json_byte_flip":
        rel = pick(["state.json", "manifest.json"])
        raw = bytearray((art / rel).read_bytes())
        pos = sorted(int(p) for p in rng.integers(0, len(raw), size=int(rng.integers(1, 3))))
        for p in pos:
            raw[p] ^= int(rng.integers(1, 256))
        data = bytes(raw)
        (art / rel).write_bytes(data)
        desc = f"xor bytes {pos} of {rel}"
        # a flip inside a number or a name can make another valid value: only keep it when the JSON breaks,
        # changes type, or lands in a structural place (keys); otherwise undo it (a harmless case)
        try:
            new = json.loads(data)
            old = manifest if rel == "manifest.json" else state
            if _same_shape(old, new):
                (art / rel).write_text(json.dumps(old))
                desc += " (a same-type value edit: undone)"
        except (ValueError, RecursionError):
            pass
    elif kind in ("json_value", "json_key"):
        rel = pick(["state.json", "manifest.json"])
        doc = manifest if rel == "manifest.json" else state
        path = _pick_path(rng, doc)
        parent = _get(doc, path[:-1])
        old = parent[path[-1]]
        if kind == "json_value":
            if isinstance(old, int) and not isinstance(old, bool) and rel == "state.json" and not _is_params_path(rel, path) and rng.random() < 0.5:
                new = old + int(pick([-1, 1, 7, -(10**6), 10**12]))  # a structural count (n_items_, a shape...)
            else:
                new = _odd_value(rng, old)
            parent[path[-1]] = new
            desc = f"{rel} {list(path)}: {json.dumps(old)[:40]} -> {json.dumps(new)[:40]}"
        else:
            op = int(rng.integers(3))
            if isinstance(parent, dict):
                if op == 0:
                    del parent[path[-1]]
                    desc = f"{rel} {list(path)}: key removed"
                elif op == 1:
                    parent["unknown_key_"] = old
                    desc = f"{rel} {list(path[:-1])}: unknown key added"
                else:
                    parent[str(path[-1]) + "x"] = parent.pop(path[-1])
                    desc = f"{rel} {list(path)}: key renamed"
            else:
                if op == 0:
                    parent.pop(path[-1])
                    desc = f"{rel} {list(path)}: list item removed"
                else:
                    parent.append(old)
                    desc = f"{rel} {list(path)}: list item duplicated"
        (art / rel).write_text(json.dumps(doc))
    elif kind == "json_deep":
        rel = pick(["state.json", "manifest.json"])
        doc = manifest if rel == "manifest.json" else state
        path = _pick_path(rng, doc)
        depth = int(pick([50, 1000, 100_000]))
        text = json.dumps(doc)
        marker = "\u0000DEEP\u0000"
        _set(doc, path, marker)
        text = json.dumps(doc).replace(json.dumps(marker), "[" * depth + "]" * depth, 1)
        (art / rel).write_text(text)
        desc = f"{rel} {list(path)}: a list nested {depth} deep"
    elif kind == "file_ref":
        refs = [p for p in _json_paths(state) if isinstance(_get(state, p), str) and _get(state, p).startswith("arrays/")]
        path = pick(refs)
        new = pick(["arrays/missing.npy", "/etc/passwd", "../manifest.json", "arrays/../state.json", "manifest.json", "arrays", ""])
        _set(state, path, new)
        (art / "state.json").write_text(json.dumps(state))
        desc = f"state.json {list(path)} -> {new!r}"
    elif kind == "symlink":
        op = int(rng.integers(4))
        if op == 0:
            rel = pick(npys + ["state.json"])
            shutil.copy(art / rel, outside / "copy")
            (art / rel).unlink()
            os.symlink(outside / "copy", art / rel)
            desc = f"{rel} -> a link to an identical copy outside"
        elif op == 1:
            shutil.copytree(art / "arrays", outside / "arrays")
            shutil.rmtree(art / "arrays")
            os.symlink(outside / "arrays", art / "arrays")
            desc = "arrays/ -> a link to an identical copy outside"
        elif op == 2:
            rel = pick(npys)
            (art / rel).unlink()
            os.symlink("/etc/passwd", art / rel)
            desc = f"{rel} -> /etc/passwd"
        else:
            shutil.copy(art / "manifest.json", outside / "manifest.json")
            (art / "manifest.json").unlink()
            os.symlink(outside / "manifest.json", art / "manifest.json")
            desc = "manifest.json -> a link to an identical copy outside"
        rehash = False  # the link must be refused, whatever the hashes say
    elif kind == "special_file":
        rel = pick(npys + ["state.json"])
        (art / rel).unlink()
        os.mkfifo(art / rel)
        desc = f"{rel} -> a FIFO (reading it would block)"
        rehash = False
    elif kind == "traversal":
        rel = pick(npys)
        new = pick(["../x.npy", "arrays/../../x.npy", str(outside / "x.npy"), "arrays/./x.npy"])
        shutil.copy(art / rel, outside / "x.npy")
        shutil.copy(art / rel, art.parent / "x.npy")
        manifest["files"][new] = manifest["files"].pop(rel)
        for ref in [q for q in _json_paths(state) if _get(state, q) == rel]:
            _set(state, ref, new)
        (art / "state.json").write_text(json.dumps(state))
        (art / "manifest.json").write_text(json.dumps(manifest))
        desc = f"{rel} listed and referenced as {new!r} (an identical copy placed there)"
        must_fail = True
    elif kind == "remove_file":
        op = int(rng.integers(3))
        rel = pick(npys + ["state.json"])
        if op == 0:
            (art / rel).unlink()
            desc = f"{rel} removed"
        elif op == 1:
            (art / rel).unlink()
            manifest["files"].pop(rel)
            (art / "manifest.json").write_text(json.dumps(manifest))
            desc = f"{rel} removed, and from the manifest"
        else:
            key = pick(sorted(state))
            del state[key]
            (art / "state.json").write_text(json.dumps(state))
            desc = f"state.json attribute {key!r} removed"
    else:  # add_file
        op = int(rng.integers(3))
        name = pick(["arrays/999_extra.npy", "extra.npy", "arrays/sub/x.npy", "notes.txt"])
        (art / name).parent.mkdir(parents=True, exist_ok=True)
        np.save(art / name, np.arange(3)) if name.endswith(".npy") else (art / name).write_text("hello")
        if op == 0 and "/sub/" not in name:
            manifest["files"][name] = _sha(art / name)
            (art / "manifest.json").write_text(json.dumps(manifest))
            desc = f"{name} added and listed (never referenced)"
        else:
            desc = f"{name} added, unlisted"
    if rehash and kind not in ("symlink", "special_file"):
        _rehash(art)
    return Applied(desc, must_fail=must_fail, verify=case.integrity != "noverify")


def _same_shape(a: Any, b: Any) -> bool:
    """Same JSON structure: same keys and list lengths, same value types (values may differ)."""
    if isinstance(a, dict):
        return isinstance(b, dict) and list(a) == list(b) and all(_same_shape(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return isinstance(b, list) and len(a) == len(b) and all(_same_shape(x, y) for x, y in zip(a, b))
    return type(a) is type(b) and (not isinstance(a, str) or a == b or not (a.startswith("arrays/") or "/" in a))


def _rehash(art: Path) -> None:
    """Recompute the manifest's hash and size of every listed regular file (a tamperer's last step)."""
    mpath = art / "manifest.json"
    try:
        manifest = json.loads(mpath.read_text())
        files = manifest["files"]
        for rel in list(files):
            p = art / rel
            if isinstance(rel, str) and ".." not in rel and not os.path.isabs(rel) and p.is_file() and not p.is_symlink():
                if isinstance(files[rel], dict):
                    files[rel] = _sha(p)
        mpath.write_text(json.dumps(manifest))
    except (ValueError, KeyError, TypeError, AttributeError, OSError, RecursionError):
        pass  # a broken manifest stays broken


# -- the worker -------------------------------------------------------------------------------------


def _answer(request: dict[str, Any]) -> dict[str, Any]:
    from recsys import load_model
    from recsys.errors import ArtifactError

    try:
        model = load_model(request["path"], verify=request.get("verify", True), mmap=request.get("mmap", True))
    except ArtifactError as e:
        return {"outcome": "artifact_error", "detail": str(e)[:300]}
    except BaseException as e:  # noqa: BLE001  (reported, and fails the case)
        return {"outcome": "exception", "detail": f"load: {type(e).__name__}: {str(e)[:300]}"}
    try:
        recs = model.recommend(request["users"], k=request["k"])
        rows = [[_plain(u), _plain(i), float(s)] for u, i, s in zip(recs["user"], recs["item"], recs["score"])]
    except BaseException as e:  # noqa: BLE001
        return {"outcome": "exception", "detail": f"recommend: {type(e).__name__}: {str(e)[:300]}"}
    return {"outcome": "loaded", "recs": rows}


def _plain(x: Any) -> Any:
    return x.item() if hasattr(x, "item") else x


def worker_main() -> None:
    """Answer one JSON request per stdin line with one JSON line (run as ``python -m recsys.testing.artifact_fuzz``)."""
    import warnings

    warnings.simplefilter("ignore")
    try:
        import torch

        torch.set_num_threads(1)
    except ImportError:
        pass
    import recsys.models  # noqa: F401  (import once, before the first case)

    out = sys.stdout
    sys.stdout = sys.stderr  # nothing a model prints may corrupt the answers
    for line in sys.stdin:
        answer = _answer(json.loads(line))
        out.write(json.dumps(answer) + "\n")
        out.flush()


class Worker:
    """A long-lived worker subprocess; :meth:`ask` returns its answer, or a failure when it died or hung."""

    def __init__(self, timeout: float = 120.0) -> None:
        env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"}
        self.timeout = timeout
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "recsys.testing.artifact_fuzz"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
            env=env,
        )

    def ask(self, request: dict[str, Any]) -> dict[str, Any]:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        try:
            self.proc.stdin.write(json.dumps(request) + "\n")
            self.proc.stdin.flush()
        except BrokenPipeError:
            return self._died()
        ready, _, _ = select.select([self.proc.stdout], [], [], self.timeout)
        if not ready:
            self.close()
            return {"outcome": "crash", "detail": f"no answer within {self.timeout:.0f} s (hang); worker killed"}
        line = self.proc.stdout.readline()
        if not line:
            return self._died()
        return json.loads(line)  # type: ignore[no-any-return]

    def _died(self) -> dict[str, Any]:
        code = self.proc.wait(timeout=30)
        return {"outcome": "crash", "detail": f"worker died with exit code {code}" + (f" (signal {-code})" if code < 0 else "")}

    @property
    def alive(self) -> bool:
        return self.proc.poll() is None

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(timeout=30)
        for f in (self.proc.stdin, self.proc.stdout):
            if f is not None:
                # closing flushes: a request still buffered for a worker that died raises BrokenPipeError
                with contextlib.suppress(OSError):
                    f.close()


# -- running cases ----------------------------------------------------------------------------------


@dataclass
class Result:
    case: Case
    description: str
    outcome: str  # identical / artifact_error / FAILED
    detail: str = ""


@dataclass
class Fuzzer:
    """Pristine artifacts, their baseline answers, and workers that run cases against them."""

    artifacts: dict[str, Path]
    scratch: Path
    n_workers: int = 1
    baselines: dict[str, dict[str, Any]] = field(default_factory=dict)
    users: dict[str, list[Any]] = field(default_factory=dict)
    _workers: list[Worker] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        from recsys import load_model

        self._pool: queue.Queue[Worker] = queue.Queue()
        for _ in range(self.n_workers):
            self._pool.put(Worker())
        for name, path in self.artifacts.items():
            self.users[name] = [_plain(u) for u in load_model(path).users_.ids[:USERS]]
            answer = self._ask({"path": str(path), "users": self.users[name], "k": K, "verify": True})
            if answer["outcome"] != "loaded":
                raise RuntimeError(f"the unmutated {name} artifact does not load in a worker: {answer}")
            self.baselines[name] = answer

    def _ask(self, request: dict[str, Any]) -> dict[str, Any]:
        worker = self._pool.get()
        try:
            answer = worker.ask(request)
        finally:
            if not worker.alive or answer.get("outcome") == "crash":
                worker.close()
                worker = Worker()  # a fresh worker for the next case
            self._pool.put(worker)
        return answer

    def run(self, case: Case) -> Result:
        work = Path(tempfile.mkdtemp(prefix="case-", dir=self.scratch))
        try:
            art = work / "artifact"
            outside = work / "outside"
            outside.mkdir()
            shutil.copytree(self.artifacts[case.model], art, symlinks=True)
            applied = mutate(art, case, outside)
            # odd seeds read the arrays into memory instead of mapping them (another numpy code path)
            request = {"path": str(art), "users": self.users[case.model], "k": K, "verify": applied.verify, "mmap": case.seed % 2 == 0}
            answer = self._ask(request)
        finally:
            shutil.rmtree(work, ignore_errors=True)
        outcome = answer["outcome"]
        if outcome == "artifact_error":
            return Result(case, applied.description, "artifact_error", answer["detail"])
        if outcome == "loaded":
            if applied.must_fail:
                return Result(case, applied.description, "FAILED", "loaded a mutation that must be refused")
            if answer["recs"] == self.baselines[case.model]["recs"]:
                return Result(case, applied.description, "identical")
            return Result(case, applied.description, "FAILED", "different recommendations")
        return Result(case, applied.description, "FAILED", f"{outcome}: {answer.get('detail', '')}")

    def close(self) -> None:
        while not self._pool.empty():
            self._pool.get().close()


def case_strategy(models: list[str]) -> Any:
    """A hypothesis strategy of :class:`Case`: hashes recomputed (or verification off) for half of them."""
    from hypothesis import strategies as st

    integrity = st.sampled_from(["rehash", "rehash", "rehash", "rehash", "stale", "stale", "stale", "noverify"])
    return st.builds(Case, st.sampled_from(models), st.sampled_from(KINDS), st.integers(0, 2**32 - 1), integrity)


if __name__ == "__main__":
    worker_main()
