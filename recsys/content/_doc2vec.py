"""Paragraph vectors (Doc2Vec, gensim) trained on the item texts themselves."""

from __future__ import annotations

import hashlib
from typing import Any, Literal

import numpy as np
from numpy.typing import NDArray

from recsys._utils.params import check_choice, check_float, check_int, check_seed
from recsys._utils.progress import progress_bar
from recsys.content._base import TextEncoder, require_module
from recsys.content._hashing import tokenize
from recsys.errors import ParameterError


class Doc2VecEncoder(TextEncoder):
    """Doc2Vec paragraph vectors (Le & Mikolov 2014) learned from the corpus passed to :meth:`fit`.

    ``fit`` trains gensim's ``Doc2Vec`` on the distinct texts (tokens:
    lower-cased words and numbers). ``encode`` returns the trained vector of
    a text seen by ``fit`` and infers one for any other text. Inference is
    made reproducible here: the starting vector and the sampling are seeded
    from ``seed`` and the text (gensim's own ``infer_vector`` seeds from
    Python's per-process string hash). Training is bit-for-bit reproducible
    with ``workers=1`` and a fixed ``seed`` (more workers train faster but
    their thread scheduling changes the result). A text with no token known
    to the model encodes to the zero vector. Needs ``gensim``
    (``pip install "recsys[content]"``).

    Parameters
    ----------
    mode : {"dbow", "dm"}, default "dbow"
        PV-DBOW (distributed bag of words; robust on short texts) or PV-DM
        (distributed memory, context-window averaging).
    vector_size : int, default 64
    window : int, default 5
        Context window (PV-DM, and word training in PV-DBOW with ``dbow_words``).
    min_count : int, default 1
        Words rarer than this are ignored.
    epochs : int, default 40
        Training epochs; inference of new texts uses as many.
    negative : int, default 5
        Negative samples per positive.
    dbow_words : bool, default True
        PV-DBOW also trains word vectors (skip-gram), so texts sharing related
        words get related vectors.
    sample : float, default 0.0
        Down-sampling threshold of frequent words (gensim's ``sample``; 0 keeps
        every word). Item texts are short and their most frequent words
        (genres, categories) carry much of the signal, so the default keeps them;
        gensim's usual 1e-3 drops about 90% of the occurrences of a word found in
        10% of the texts.
    alpha : float, default 0.025
        Initial learning rate (decays linearly to 0.0001).
    seed : int, default 42
    workers : int, default 1

    Raises
    ------
    MissingDependencyError
        gensim is not installed.

    Examples
    --------
    >>> enc = Doc2VecEncoder(vector_size=8, epochs=5).fit(["space alien robot", "love wedding paris"])
    >>> enc.encode(["space alien robot", "alien robot"]).shape
    (2, 8)
    """

    def __init__(
        self,
        mode: Literal["dbow", "dm"] = "dbow",
        vector_size: int = 64,
        window: int = 5,
        min_count: int = 1,
        epochs: int = 40,
        negative: int = 5,
        dbow_words: bool = True,
        sample: float = 0.0,
        alpha: float = 0.025,
        seed: int = 42,
        workers: int = 1,
    ) -> None:
        require_module("gensim", "Doc2VecEncoder")
        self.mode = mode
        self.vector_size = vector_size
        self.window = window
        self.min_count = min_count
        self.epochs = epochs
        self.negative = negative
        self.dbow_words = dbow_words
        self.sample = sample
        self.alpha = alpha
        self.seed = seed
        self.workers = workers

    def _validate_params(self) -> None:
        owner = "Doc2VecEncoder"
        check_choice(owner, "mode", self.mode, ("dbow", "dm"))
        check_int(owner, "vector_size", self.vector_size, low=1)
        check_int(owner, "window", self.window, low=1)
        check_int(owner, "min_count", self.min_count, low=1)
        check_int(owner, "epochs", self.epochs, low=1)
        check_int(owner, "negative", self.negative, low=1)
        check_float(owner, "alpha", self.alpha, low=0.0, low_open=True)
        check_float(owner, "sample", self.sample, low=0.0)
        if check_seed(owner, "seed", self.seed) is None:
            raise ParameterError(f"The 'seed' parameter of {owner} must be an int >= 0. Got None instead.")
        check_int(owner, "workers", self.workers, low=1)
        if not isinstance(self.dbow_words, bool):
            raise ParameterError(f"The 'dbow_words' parameter of {owner} must be a bool. Got {self.dbow_words!r} instead.")

    @property
    def embedding_dim(self) -> int:
        return int(self.vector_size)

    @property
    def is_fitted(self) -> bool:
        return "_model" in vars(self)

    def _fit(self, texts: list[str]) -> None:
        from gensim.models.callbacks import CallbackAny2Vec
        from gensim.models.doc2vec import Doc2Vec, TaggedDocument

        unique = list(dict.fromkeys(texts))
        docs = [TaggedDocument(tokenize(t), [i]) for i, t in enumerate(unique)]
        if not any(d.words for d in docs):
            raise ParameterError("Doc2VecEncoder.fit needs at least one text with a word in it")
        bar = progress_bar(desc="Doc2Vec epochs", total=self.epochs)

        class _Tick(CallbackAny2Vec):  # type: ignore[misc]
            def on_epoch_end(self, model: Any) -> None:
                bar.update(1)

        try:
            model = Doc2Vec(
                documents=docs,
                dm=1 if self.mode == "dm" else 0,
                vector_size=self.vector_size,
                window=self.window,
                min_count=self.min_count,
                epochs=self.epochs,
                negative=self.negative,
                hs=0,
                dbow_words=int(self.dbow_words),
                sample=self.sample,
                alpha=self.alpha,
                min_alpha=0.0001,
                seed=self.seed,
                workers=self.workers,
                callbacks=[_Tick()],
            )
        finally:
            bar.close()
        vocab = model.wv.key_to_index
        known = np.array([any(w in vocab for w in d.words) for d in docs], dtype=bool)
        vectors = np.asarray(model.dv.vectors[: len(unique)], dtype=np.float32).copy()
        vectors[~known] = 0.0  # such a vector was never trained: it is its random start
        self._model = model
        self._vectors = vectors
        self._row = {t: i for i, t in enumerate(unique)}

    def _infer(self, words: list[str]) -> NDArray[np.float32]:
        """A vector for a text outside the training corpus, seeded by ``seed`` and the words."""
        from gensim.models.doc2vec_inner import train_document_dbow, train_document_dm

        model = self._model
        words = [w for w in words if w in model.wv.key_to_index]
        if not words:
            return np.zeros(self.vector_size, dtype=np.float32)
        digest = hashlib.blake2b("\0".join(words).encode("utf-8"), digest_size=8).digest()
        text_seed = int.from_bytes(digest, "little")
        rng = np.random.default_rng([self.seed, text_seed])
        vec = ((rng.random(self.vector_size) - 0.5) / self.vector_size).astype(np.float32).reshape(1, -1)
        # gensim's training routines draw from model.random; reseeding one RandomState gives the same stream
        # as a new RandomState(seed) at a sixtieth of the cost
        rs = vars(self).get("_random")
        if rs is None:
            rs = self._random = np.random.RandomState(0)
        rs.seed(text_seed % (2**32))
        model.random = rs
        lockf = np.ones(1, dtype=np.float32)
        work = np.zeros(model.layer1_size, dtype=np.float32)
        neu1 = np.zeros(model.layer1_size, dtype=np.float32)
        alpha, min_alpha = float(model.alpha), float(model.min_alpha)
        step = (alpha - min_alpha) / max(self.epochs - 1, 1)
        for _ in range(self.epochs):
            if self.mode == "dbow":
                train_document_dbow(
                    model, words, [0], alpha, work, learn_words=False, learn_hidden=False,
                    doctag_vectors=vec, doctags_lockf=lockf,
                )  # fmt: skip
            else:
                train_document_dm(
                    model, words, [0], alpha, work, neu1, learn_words=False, learn_hidden=False,
                    doctag_vectors=vec, doctags_lockf=lockf,
                )  # fmt: skip
            alpha -= step
        return vec[0]

    def _encode(self, texts: list[str], show_progress: bool | None) -> NDArray[np.float32]:
        out = np.empty((len(texts), self.vector_size), dtype=np.float32)
        rows = np.array([self._row.get(t, -1) for t in texts], dtype=np.int64)
        known = rows >= 0
        out[known] = self._vectors[rows[known]]
        new = np.flatnonzero(~known)
        if len(new):
            with progress_bar(desc="Doc2Vec inference", total=len(new), show=show_progress) as bar:
                for i in new:
                    out[i] = self._infer(tokenize(texts[i]))
                    bar.update(1)
        return out


__all__ = ["Doc2VecEncoder"]
