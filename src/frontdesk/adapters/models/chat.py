"""Which generative model answers: ``build_chat_model(settings)``.

Backends are registered by name (``CHAT_MODEL_FACTORIES``, ``register_chat_model``), the
built-in ones like any plugin. The chosen backend's model comes wrapped in
``ResilientChatModel`` (timeouts, retries, circuit breaker) configured from the settings.
``model_backend = "extractive"`` means no generative model at all: ``None``.
"""

from __future__ import annotations

from collections.abc import Callable

from frontdesk.adapters.models.llama_cpp_service import LlamaCppChatModel
from frontdesk.adapters.models.openai_service import OpenAIChatModel
from frontdesk.adapters.models.resilience import ResilientChatModel
from frontdesk.config import Settings
from frontdesk.core.chat import ChatModel

ChatModelFactory = Callable[[Settings], ChatModel]

CHAT_MODEL_FACTORIES: dict[str, ChatModelFactory] = {
    "openai": OpenAIChatModel.from_settings,
    "llama_cpp": LlamaCppChatModel.from_settings,
}


def register_chat_model(backend: str, factory: ChatModelFactory) -> None:
    """Make ``backend`` a name ``build_chat_model`` knows (a later registration replaces an
    earlier one). Settings.model_backend lists the names it accepts."""
    CHAT_MODEL_FACTORIES[backend] = factory


def build_chat_model(settings: Settings) -> ResilientChatModel | None:
    """The generative model the settings ask for, ready to stream; None for "extractive".
    Raises ``ValueError`` for an unknown backend, and the backend's own error when it cannot
    be set up (``ModelSetupError`` for llama.cpp without the extra or a model file)."""
    backend = settings.model_backend
    if backend == "extractive":
        return None
    try:
        factory = CHAT_MODEL_FACTORIES[backend]
    except KeyError:
        known = ", ".join(sorted(CHAT_MODEL_FACTORIES))
        raise ValueError(f"unknown model backend {backend!r} (known: {known})") from None
    return ResilientChatModel.from_settings(factory(settings), settings)
