"""The app factory. ``create_app(settings)`` builds everything; nothing exists at import time."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware

from frontdesk import __version__
from frontdesk.api import admin, analytics, console, errors, insights, routes, web, websocket
from frontdesk.api.limits import BodySizeLimit, RateLimit, RateLimiter, SecurityHeaders
from frontdesk.config import Settings
from frontdesk.service import Frontdesk


def create_app(settings: Settings | None = None, *, frontdesk: Frontdesk | None = None) -> FastAPI:
    """A FastAPI app serving one Frontdesk. The app starts it (on the server's event loop)
    unless ``frontdesk`` is given already started, and closes what it started."""
    settings = settings or (frontdesk.settings if frontdesk else Settings())
    fd = frontdesk or Frontdesk(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        logging.basicConfig(level=settings.log_level)
        logging.getLogger("bm25s").setLevel(logging.WARNING)
        owned = not fd.started
        if owned:
            await fd.start()
        app.state.frontdesk = fd
        try:
            yield
        finally:
            if owned:
                await fd.close()

    app = FastAPI(
        title="Frontdesk",
        version=__version__,
        description="A self-hosted AI front desk for customer service and sales.",
        docs_url=None,
        redoc_url=None,
        lifespan=lifespan,
        telemetry=None
        if settings.opentelemetry
        else {"tracing": False, "metrics": False, "logs": False, "operation_spans": False},
    )
    app.state.frontdesk = fd
    errors.install(app)
    console.install(app)
    analytics.install(app)
    app.include_router(routes.router)
    app.include_router(console.router)
    app.include_router(analytics.router)
    app.include_router(insights.router)
    app.include_router(admin.router)
    app.include_router(console.pages)
    app.include_router(websocket.router)
    app.include_router(web.router)
    web.mount(app)
    app.add_middleware(
        CORSMiddleware,
        allow_origins=settings.cors_origins,
        allow_methods=["GET", "POST"],
        allow_headers=["Content-Type"],
    )
    app.add_middleware(BodySizeLimit, max_bytes=settings.max_body_bytes)
    # One limiter for REST and WebSocket messages alike.
    app.state.rate_limiter = RateLimiter()
    app.add_middleware(
        RateLimit,
        limiter=app.state.rate_limiter,
        per_ip=settings.rate_limit_per_ip,
        per_conversation=settings.rate_limit_per_conversation,
        logins=settings.rate_limit_logins,
    )
    app.add_middleware(SecurityHeaders)
    return app
