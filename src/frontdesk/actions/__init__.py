"""The only code that writes state: each action writes, commits, then publishes."""

from __future__ import annotations


class ActionError(Exception):
    """A request that cannot be done. ``code`` and ``message`` become the API's error body,
    ``status`` its HTTP status (one handler serves every subclass)."""

    def __init__(self, code: str, message: str, status: int = 409) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status
