"""ASGI middleware: request bodies over the size limit get 413; requests over the rate limits
get 429 with Retry-After."""

from __future__ import annotations

import json
import math
import re
import time
from collections.abc import Callable

from starlette.types import ASGIApp, Message, Receive, Scope, Send


async def send_json_error(
    send: Send,
    status: int,
    code: str,
    message: str,
    extra: dict[str, object],
    headers: list[tuple[bytes, bytes]] | None = None,
) -> None:
    """An error response in the service's one error shape, from inside a middleware."""
    body = json.dumps({"error": {"code": code, "message": message, **extra}}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                *(headers or []),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


class BodyTooLarge(Exception):
    pass


class BodySizeLimit:
    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        for name, value in scope.get("headers", []):
            if name == b"content-length" and value.isdigit() and int(value) > self.max_bytes:
                await self._refuse(send)
                return
        seen = 0
        started = False

        async def limited_receive() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_bytes:
                    raise BodyTooLarge
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, limited_receive, tracking_send)
        except BodyTooLarge:
            if not started:
                await self._refuse(send)

    async def _refuse(self, send: Send) -> None:
        await send_json_error(
            send,
            413,
            "request_too_large",
            f"the request body is over the limit of {self.max_bytes} bytes",
            {"limit": self.max_bytes},
        )


class RateLimiter:
    """Token buckets per key (an IP, a conversation, a login IP), in this worker's memory:
    ``per_minute`` requests a minute, with bursts up to the same number."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._buckets: dict[str, tuple[float, float]] = {}

    def hit(self, key: str, per_minute: int) -> float | None:
        """Take one request; None if allowed, else the seconds to wait."""
        if per_minute <= 0:
            return None
        now = self._clock()
        tokens, last = self._buckets.get(key, (float(per_minute), now))
        tokens = min(float(per_minute), tokens + (now - last) * per_minute / 60)
        if tokens < 1:
            self._buckets[key] = (tokens, now)
            return (1 - tokens) * 60 / per_minute
        self._buckets[key] = (tokens - 1, now)
        if len(self._buckets) > 100_000:  # forget the idle ones
            self._buckets = {k: v for k, v in self._buckets.items() if now - v[1] < 60}
        return None


_MESSAGES = re.compile(r"^/api/conversations/([^/]+)/messages$")


class RateLimit:
    """429 with Retry-After for POSTs over the limits: per client address, per conversation
    (its messages), and for console logins."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        per_ip: int,
        per_conversation: int,
        logins: int,
        limiter: RateLimiter | None = None,
    ) -> None:
        self.app = app
        self.per_ip = per_ip
        self.per_conversation = per_conversation
        self.logins = logins
        self.limiter = limiter or RateLimiter()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope.get("method") != "POST":
            await self.app(scope, receive, send)
            return
        path: str = scope.get("path", "")
        client = (scope.get("client") or ("unknown", 0))[0]
        checks = [(f"ip:{client}", self.per_ip)]
        found = _MESSAGES.match(path)
        if found:
            checks.append((f"conversation:{found.group(1)}", self.per_conversation))
        if path == "/api/console/login":
            checks.append((f"login:{client}", self.logins))
        for key, limit in checks:
            wait = self.limiter.hit(key, limit)
            if wait is not None:
                await self._refuse(send, key.split(":", 1)[0], math.ceil(wait))
                return
        await self.app(scope, receive, send)

    async def _refuse(self, send: Send, scope_name: str, retry_after: int) -> None:
        await send_json_error(
            send,
            429,
            "rate_limited",
            f"too many requests ({scope_name}); retry in {retry_after} s",
            {"retry_after": retry_after},
            [(b"retry-after", str(retry_after).encode())],
        )


_CONSOLE_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self' ws: wss:; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
)
_PAGE_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; connect-src 'self' ws: wss:; frame-ancestors 'self'; "
    "base-uri 'none'"
)


class SecurityHeaders:
    """nosniff and a referrer policy on every response; a Content-Security-Policy on the
    service's own pages (the console's allows nothing but the service itself)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope.get("path", "")
        csp = _CONSOLE_CSP if path.startswith("/console") else _PAGE_CSP if path == "/" else None

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                headers.append((b"x-content-type-options", b"nosniff"))
                headers.append((b"referrer-policy", b"same-origin"))
                if csp is not None:
                    headers.append((b"content-security-policy", csp.encode()))
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, with_headers)
