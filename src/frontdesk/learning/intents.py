"""The intent model: two calibrated linear heads, one over the sentence encoder's vectors and
one over character n-grams, with out-of-scope detection.

Training holds out a fifth of the data to choose the dense head's regularisation, the weight
of the lexical head in the average of their probabilities, a softmax temperature that makes
the confidence calibrated, and, when the data has out-of-scope examples, the confidence below
which a message counts as out of scope. It then refits both heads on all the data. A message
is out of scope when the model predicts the out-of-scope label or its confidence is under the
threshold.

With unlabelled messages (``--unlabelled``), their labels are inferred by label spreading
(:mod:`frontdesk.learning.spreading`) and the heads are trained on them too; the settings are
still chosen on the labelled fifth alone, with labels spread from the other four fifths only.

A model trained with ``--fine-tune`` has an encoder of its own (``encoder.onnx`` in its
folder, its sha256 in ``meta.json``): :meth:`IntentModel.load` opens it, and the model's
vectors come from it instead of the service's shared encoder (which retrieval keeps using).

A model trained with ``--second-opinion`` also holds a second model in ``second/``: heads over
a larger fine-tuned encoder (all-mpnet-base-v2, int8, with its tokenizer). A message whose
confidence is under ``second_below`` (meta.json) is classified by the second model instead;
the others, most of them, cost the first model's time only (docs/learning.md).
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
from scipy.optimize import minimize_scalar
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split

from frontdesk.core.ports import Embedder, Vector
from frontdesk.learning import spreading

Progress = Callable[[str, int, int], None]
Floats = npt.NDArray[np.float64]
DENSE_C = (4.0, 16.0, 64.0)
LEXICAL_C = 20.0
WEIGHTS = (0.0, 0.2, 0.35, 0.5)
DEFAULT_OOS = "oos"
SECOND = "second"  # the folder of a model's second opinion


def _vectorizer(vocabulary: dict[str, int] | None = None) -> TfidfVectorizer:
    return TfidfVectorizer(
        analyzer="char_wb",
        ngram_range=(2, 5),
        sublinear_tf=True,
        lowercase=True,
        vocabulary=vocabulary,
        dtype=np.float32,
    )


@dataclass(frozen=True, slots=True)
class Prediction:
    label: str
    confidence: float
    out_of_scope: bool


@dataclass(frozen=True)
class LexicalHead:
    vocabulary: dict[str, int]
    idf: npt.NDArray[np.float32]
    coef: npt.NDArray[np.float32]
    intercept: npt.NDArray[np.float32]
    _analyze: Callable[[str], list[str]] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        # The same n-grams as at training time; counting and weighting are done here.
        object.__setattr__(self, "_analyze", _vectorizer(self.vocabulary).build_analyzer())

    def _features(self, text: str) -> tuple[npt.NDArray[np.intp], npt.NDArray[np.float64]]:
        """The TF-IDF features of one text, as the vectorizer computes them (sublinear tf,
        idf, L2 norm), without building a sparse matrix: much faster for a single message."""
        counts: dict[int, int] = {}
        for gram in self._analyze(text):
            index = self.vocabulary.get(gram)
            if index is not None:
                counts[index] = counts.get(index, 0) + 1
        indexes = np.fromiter(counts.keys(), dtype=np.intp, count=len(counts))
        values = 1.0 + np.log(np.fromiter(counts.values(), dtype=np.float64, count=len(counts)))
        values *= self.idf[indexes]
        norm = float(np.sqrt((values * values).sum()))
        return indexes, values / norm if norm > 0 else values

    def probabilities(self, texts: Sequence[str]) -> Floats:
        logits = np.empty((len(texts), len(self.intercept)), dtype=np.float64)
        for row, text in enumerate(texts):
            indexes, values = self._features(text)
            logits[row] = self.coef[:, indexes] @ values + self.intercept
        return _softmax(logits)


def _softmax(logits: Floats) -> Floats:
    shifted = logits - logits.max(axis=1, keepdims=True)
    exp = np.exp(shifted)
    result: Floats = exp / exp.sum(axis=1, keepdims=True)
    return result


@dataclass(frozen=True)
class IntentModel:
    labels: tuple[str, ...]
    coef: npt.NDArray[np.float32]
    intercept: npt.NDArray[np.float32]
    lexical: LexicalHead | None
    weight: float
    temperature: float
    threshold: float
    oos_label: str
    encoder: str
    meta: dict[str, Any] = field(default_factory=dict)
    # The model's own (fine-tuned) encoder, opened by load() when the folder has one.
    own_encoder: Embedder | None = field(default=None, compare=False, repr=False)
    # The second opinion (``--second-opinion``): a model over a larger encoder of its own,
    # asked when this one's confidence is under ``second_below``.
    second: IntentModel | None = field(default=None, compare=False, repr=False)

    @property
    def second_below(self) -> float:
        """The confidence under which the second opinion decides (0: there is none)."""
        return float(self.meta.get("second_below", 0.0)) if self.second is not None else 0.0

    @property
    def encoder_file(self) -> str | None:
        """The file name of the model's own encoder (fine-tuned), or None: the shared one."""
        value = self.meta.get("encoder_file")
        return str(value) if value else None

    def _own(self) -> Embedder:
        if self.own_encoder is None:
            raise RuntimeError("this intent model's own encoder is not open: use IntentModel.load")
        return self.own_encoder

    def embedder(self, shared: Embedder) -> Embedder:
        """The encoder whose vectors this model reads: its own, or ``shared``."""
        return shared if self.encoder_file is None else self._own()

    async def predict_message(
        self, text: str, vector: Vector, ngrams: Floats | None = None
    ) -> Prediction:
        """The prediction for one message, given the shared encoder's ``vector`` of it (the
        one retrieval uses) and, if already known, :meth:`ngram_probabilities` of ``text``. A
        model with its own fine-tuned encoder embeds the text again with that: one more
        encoder pass per message, on the encoder's own thread and cache (p50 about 4.5 ms on
        one thread with the int8 export, as the built-in encoder: docs/learning.md)."""
        if self.encoder_file is not None:
            vector = await self._own().embed_one(text)
        first = self._predict([text], vector, ngrams)[0]
        if self.second is None or first.confidence >= self.second_below:
            return first
        again = await self.second._own().embed_one(text)
        return self.second.predict([text], again)[0]

    def ngram_probabilities(self, texts: Sequence[str]) -> Floats | None:
        """The character n-gram head's part of :meth:`probabilities`, which needs no vector
        (None: the model does not use that head)."""
        if self.lexical is None or self.weight <= 0:
            return None
        return self.lexical.probabilities(texts)

    def close(self) -> None:
        if self.own_encoder is not None:
            self.own_encoder.close()
        if self.second is not None:
            self.second.close()

    def probabilities(
        self, texts: Sequence[str], vectors: Vector, ngrams: Floats | None = None
    ) -> Floats:
        """Calibrated probabilities of each label; ``ngrams``: :meth:`ngram_probabilities` of
        ``texts``, if already known."""
        dense = _softmax(np.atleast_2d(vectors).astype(np.float64) @ self.coef.T + self.intercept)
        mixed = dense
        if ngrams is None:
            ngrams = self.ngram_probabilities(texts)
        if ngrams is not None:
            mixed = (1 - self.weight) * dense + self.weight * ngrams
        return _softmax(np.log(np.clip(mixed, 1e-12, None)) / self.temperature)

    def predict(
        self, texts: Sequence[str], vectors: Vector, ngrams: Floats | None = None
    ) -> list[Prediction]:
        """A prediction for each text (``vectors``: this model's encoder's); the texts it is
        unsure of are classified by the second opinion, if it has one."""
        predictions = self._predict(texts, vectors, ngrams)
        if self.second is None:
            return predictions
        unsure = [i for i, p in enumerate(predictions) if p.confidence < self.second_below]
        if unsure:
            asked = [texts[i] for i in unsure]
            again = self.second.predict(asked, self.second._own().embed(asked))
            for row, prediction in zip(unsure, again, strict=True):
                predictions[row] = prediction
        return predictions

    def _predict(
        self, texts: Sequence[str], vectors: Vector, ngrams: Floats | None = None
    ) -> list[Prediction]:
        probabilities = self.probabilities(texts, vectors, ngrams)
        best = probabilities.argmax(axis=1)
        predictions = []
        for row, index in enumerate(best):
            confidence = float(probabilities[row, index])
            label = self.labels[index]
            out = label == self.oos_label or confidence < self.threshold
            predictions.append(Prediction(label, confidence, out))
        return predictions

    def predict_one(self, text: str, vector: Vector) -> Prediction:
        return self.predict([text], vector)[0]

    def save(self, folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        arrays: dict[str, Any] = {"coef": self.coef, "intercept": self.intercept}
        if self.lexical is not None:
            arrays.update(
                lexical_idf=self.lexical.idf,
                lexical_coef=self.lexical.coef,
                lexical_intercept=self.lexical.intercept,
            )
            (folder / "vocabulary.json").write_text(json.dumps(self.lexical.vocabulary))
        np.savez_compressed(folder / "model.npz", **arrays)
        meta = dict(self.meta)
        meta.update(
            labels=list(self.labels),
            weight=self.weight,
            temperature=self.temperature,
            threshold=self.threshold,
            oos_label=self.oos_label,
            encoder=self.encoder,
        )
        (folder / "meta.json").write_text(json.dumps(meta, indent=2, sort_keys=True) + "\n")

    @classmethod
    def load(cls, folder: Path, *, threads: int = 1) -> IntentModel:
        """The model saved in ``folder``, with its own encoder opened (``threads`` for it)
        when it has one, and its second opinion when it has one."""
        model = cls._load(folder)
        if (folder / SECOND / "meta.json").is_file():
            model = dataclasses.replace(model, second=cls.load(folder / SECOND, threads=threads))
        file = model.encoder_file
        if file is None:
            return model
        from frontdesk.adapters.models.onnx_embedder import OnnxEmbedder

        tokenizer = model.meta.get("encoder_tokenizer")
        try:
            own = OnnxEmbedder(
                folder / file,
                threads,
                sha256=str(model.meta["encoder_sha256"]),
                name=model.encoder,
                tokenizer=folder / str(tokenizer) if tokenizer else None,
            )
        except BaseException:
            model.close()
            raise
        return dataclasses.replace(model, own_encoder=own)

    @classmethod
    def _load(cls, folder: Path) -> IntentModel:
        meta = json.loads((folder / "meta.json").read_text())
        with np.load(folder / "model.npz") as arrays:
            lexical = None
            if "lexical_coef" in arrays:
                lexical = LexicalHead(
                    vocabulary=json.loads((folder / "vocabulary.json").read_text()),
                    idf=arrays["lexical_idf"],
                    coef=arrays["lexical_coef"],
                    intercept=arrays["lexical_intercept"],
                )
            return cls(
                labels=tuple(meta["labels"]),
                coef=arrays["coef"],
                intercept=arrays["intercept"],
                lexical=lexical,
                weight=float(meta["weight"]),
                temperature=float(meta["temperature"]),
                threshold=float(meta["threshold"]),
                oos_label=str(meta["oos_label"]),
                encoder=str(meta["encoder"]),
                meta=meta,
            )


def _dense(vectors: Vector, labels: Sequence[str], c: float) -> LogisticRegression:
    return LogisticRegression(C=c, max_iter=3000).fit(vectors, np.asarray(labels))


def _lexical(texts: Sequence[str], labels: Sequence[str]) -> tuple[LexicalHead, list[str]]:
    vectorizer = _vectorizer()
    features = vectorizer.fit_transform(list(texts))
    model = LogisticRegression(C=LEXICAL_C, max_iter=3000).fit(features, np.asarray(labels))
    head = LexicalHead(
        vocabulary={str(k): int(v) for k, v in vectorizer.vocabulary_.items()},
        idf=vectorizer.idf_.astype(np.float32),
        coef=model.coef_.astype(np.float32),
        intercept=model.intercept_.astype(np.float32),
    )
    return head, [str(c) for c in model.classes_]


def _spread(
    texts: Sequence[str],
    vectors: Vector,
    labels: Sequence[str],
    unlabelled: tuple[Sequence[str], Vector],
    prior: LogisticRegression,
) -> tuple[list[str], Vector, list[str]]:
    """The labelled examples plus the unlabelled ones with the labels spread to them, the
    ``prior`` head (trained on these labelled examples) giving each its starting point."""
    order = [str(c) for c in prior.classes_]
    position = {label: i for i, label in enumerate(order)}
    u_texts, u_vectors = unlabelled
    index, _ = spreading.spread(
        vectors,
        np.array([position[y] for y in labels], dtype=np.intp),
        u_vectors,
        prior.predict_proba(u_vectors),
    )
    return (
        [*texts, *u_texts],
        np.vstack([vectors, u_vectors]),
        [*labels, *(order[i] for i in index)],
    )


def expected_calibration_error(
    confidence: Floats, correct: npt.NDArray[np.bool_], bins: int = 10
) -> float:
    total = 0.0
    for low, high in itertools.pairwise(np.linspace(0.0, 1.0, bins + 1)):
        inside = (confidence > low) & (confidence <= high)
        if inside.any():
            gap = abs(float(confidence[inside].mean()) - float(correct[inside].mean()))
            total += gap * float(inside.mean())
    return total


def _choose_threshold(
    confidence: Floats, predicted: Sequence[str], gold: Sequence[str], oos_label: str
) -> float:
    """The threshold that best balances in-scope accuracy and out-of-scope F1."""
    best_t, best_score = 0.0, -1.0
    gold_oos = np.array([g == oos_label for g in gold])
    said_oos = np.array([p == oos_label for p in predicted])
    correct = np.array([p == g for p, g in zip(predicted, gold, strict=True)])
    for t in np.linspace(0.0, 0.9, 91):
        flagged = said_oos | (confidence < t)
        hits = float((flagged & gold_oos).sum())
        precision = hits / max(float(flagged.sum()), 1.0)
        recall = hits / max(float(gold_oos.sum()), 1.0)
        f1 = 2 * precision * recall / max(precision + recall, 1e-9)
        in_acc = float((correct & ~flagged & ~gold_oos).sum()) / max(float((~gold_oos).sum()), 1)
        score = (f1 + in_acc) / 2
        if score > best_score + 1e-9:
            best_t, best_score = float(t), score
    return best_t


def _choose_weight(
    dense: Floats, lexical: Floats, gold: npt.NDArray[np.intp]
) -> tuple[float, float]:
    """The n-gram head's weight in the average of the two heads' probabilities that is most
    accurate on the validation rows, and that accuracy. Ties go to the larger weight: the
    accuracy of a fifth moves in steps of one example, so ties are common, and of equally
    accurate choices the average of two heads that err differently is the safer one. (Ties
    went to 0.0, dropping the n-gram head, until 2026-11-30; docs/benchmarks.md has the
    effect, section "The n-gram weight's ties".)"""
    best_weight, best_accuracy = WEIGHTS[0], -1.0
    for w in WEIGHTS:
        mixed = (1 - w) * dense + w * lexical
        accuracy = float((mixed.argmax(1) == gold).mean())
        if accuracy >= best_accuracy - 1e-9:
            best_weight, best_accuracy = w, max(accuracy, best_accuracy)
    return best_weight, best_accuracy


def validation_split(
    labels: Sequence[str], seed: int
) -> tuple[npt.NDArray[np.intp], npt.NDArray[np.intp]] | None:
    """The (fit, validation) rows :func:`train` uses to choose its settings: a stratified
    fifth held out; None when the data is too small for one. An encoder fine-tuned for the
    model is tuned on the fit rows only, so that the validation fifth is new to it too (on
    sentences it was tuned on, it looks far more certain than on new ones)."""
    counts = Counter(labels)
    if min(counts.values()) < 3 or len(labels) < 5 * len(counts):
        return None
    indexes = np.arange(len(labels))
    fit_i, val_i = train_test_split(indexes, test_size=0.2, random_state=seed, stratify=labels)
    return np.asarray(fit_i, dtype=np.intp), np.asarray(val_i, dtype=np.intp)


def train(
    texts: Sequence[str],
    vectors: Vector,
    labels: Sequence[str],
    *,
    encoder: str,
    oos_label: str = DEFAULT_OOS,
    seed: int = 0,
    progress: Progress | None = None,
    unlabelled: tuple[Sequence[str], Vector] | None = None,
) -> IntentModel:
    """Fit the model on examples (text, encoder vector, label), and on ``unlabelled`` (texts
    and their vectors) with labels spread from the examples."""
    started = time.perf_counter()
    labels = list(labels)
    classes = sorted(set(labels))
    counts = {c: labels.count(c) for c in classes}
    has_oos = oos_label in counts
    split = validation_split(labels, seed)
    can_validate = split is not None
    weight, temperature, threshold, chosen_c = 0.35, 1.0, 0.0, DENSE_C[1]
    calibration: dict[str, float] = {}
    steps = len(DENSE_C) + 3 if can_validate else 2
    if unlabelled:
        steps += 2 if can_validate else 1  # spreading for the validation, and for the model
    done = 0

    def step(what: str) -> None:
        nonlocal done
        done += 1
        if progress:
            progress(what, done, steps)

    if split is not None:
        fit_i, val_i = split
        fit_y = [labels[i] for i in fit_i]
        val_y = [labels[i] for i in val_i]
        best_accuracy, dense_val = -1.0, np.zeros(0)
        best = None
        for c in DENSE_C:
            candidate = _dense(vectors[fit_i], fit_y, c)
            probabilities = candidate.predict_proba(vectors[val_i])
            accuracy = float((candidate.classes_[probabilities.argmax(1)] == val_y).mean())
            if accuracy > best_accuracy:
                best_accuracy, chosen_c, dense_val, best = accuracy, c, probabilities, candidate
            step("choosing regularisation")
        fit_texts, fit_vectors = [texts[i] for i in fit_i], vectors[fit_i]
        if unlabelled and best is not None:
            fit_texts, fit_vectors, fit_y = _spread(fit_texts, fit_vectors, fit_y, unlabelled, best)
            dense_val = _dense(fit_vectors, fit_y, chosen_c).predict_proba(vectors[val_i])
            step("spreading labels (validation)")
        head, order = _lexical(fit_texts, fit_y)
        lexical_val = head.probabilities([texts[i] for i in val_i])
        assert order == classes
        step("fitting the n-gram head")
        gold = np.array([classes.index(y) for y in val_y])
        weight, best_accuracy = _choose_weight(dense_val, lexical_val, gold)
        log_mixed = np.log(np.clip((1 - weight) * dense_val + weight * lexical_val, 1e-12, None))

        def nll(t: float) -> float:
            scaled = _softmax(log_mixed / t)
            return float(-np.log(np.clip(scaled[np.arange(len(gold)), gold], 1e-12, None)).mean())

        temperature = float(minimize_scalar(nll, bounds=(0.05, 20.0), method="bounded").x)
        calibrated = _softmax(log_mixed / temperature)
        confidence = calibrated.max(axis=1)
        predicted = [classes[i] for i in calibrated.argmax(axis=1)]
        correct = calibrated.argmax(axis=1) == gold
        calibration = {
            "validation_accuracy": round(best_accuracy, 4),
            "ece_before": round(expected_calibration_error(np.exp(log_mixed).max(1), correct), 4),
            "ece_after": round(expected_calibration_error(confidence, correct), 4),
        }
        if has_oos:
            threshold = _choose_threshold(confidence, predicted, val_y, oos_label)
        step("calibrating")
    dense = _dense(vectors, labels, chosen_c)
    spread_meta: dict[str, Any] = {}
    if unlabelled:
        texts, vectors, labels = _spread(texts, vectors, labels, unlabelled, dense)
        spread_meta = {
            "unlabelled": {
                "examples": len(unlabelled[0]),
                "spread_label_counts": dict(sorted(Counter(labels[-len(unlabelled[0]) :]).items())),
                "neighbours": spreading.NEIGHBOURS,
                "alpha": spreading.ALPHA,
            }
        }
        dense = _dense(vectors, labels, chosen_c)
        step("spreading labels")
    lexical: LexicalHead | None = None
    if weight > 0:
        lexical, _ = _lexical(texts, labels)
    step("fitting on all examples")
    return IntentModel(
        labels=tuple(str(c) for c in dense.classes_),
        coef=dense.coef_.astype(np.float32),
        intercept=dense.intercept_.astype(np.float32),
        lexical=lexical,
        weight=weight,
        temperature=temperature,
        threshold=threshold,
        oos_label=oos_label,
        encoder=encoder,
        meta={
            "dense_C": chosen_c,
            "lexical_C": LEXICAL_C,
            "seed": seed,
            "examples": sum(counts.values()),
            "classes": len(classes),
            "has_oos_examples": has_oos,
            "calibration": calibration,
            "fit_seconds": round(time.perf_counter() - started, 2),
            **spread_meta,
        },
    )
