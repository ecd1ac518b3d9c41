"""One error shape for every failure: {"error": {"code": ..., "message": ...}}."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from frontdesk.actions import ActionError
from frontdesk.actions.conversations import ConversationNotFound, InvalidMessage, MessageTooLong

_CODES = {400: "bad_request", 404: "not_found", 405: "method_not_allowed", 413: "too_large"}


def error_body(code: str, message: str, **extra: Any) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, **extra}}


def install(app: FastAPI) -> None:
    @app.exception_handler(ConversationNotFound)
    async def _not_found(_request: Request, exc: ConversationNotFound) -> JSONResponse:
        return JSONResponse(error_body("conversation_not_found", str(exc)), status_code=404)

    @app.exception_handler(MessageTooLong)
    async def _too_long(_request: Request, exc: MessageTooLong) -> JSONResponse:
        return JSONResponse(
            error_body("message_too_long", str(exc), limit=exc.limit, length=exc.length),
            status_code=413,
        )

    @app.exception_handler(InvalidMessage)
    async def _invalid(_request: Request, exc: InvalidMessage) -> JSONResponse:
        return JSONResponse(error_body("invalid_message", str(exc)), status_code=422)

    @app.exception_handler(ActionError)
    async def _action(_request: Request, exc: ActionError) -> JSONResponse:
        """Every refused action: console, login, CSRF, ratings."""
        return JSONResponse(error_body(exc.code, exc.message), status_code=exc.status)

    @app.exception_handler(RequestValidationError)
    async def _validation(_request: Request, exc: RequestValidationError) -> JSONResponse:
        problems = [
            {"field": ".".join(str(p) for p in err["loc"][1:]) or "body", "problem": err["msg"]}
            for err in exc.errors()
        ]
        summary = "; ".join(f"{p['field']}: {p['problem']}" for p in problems)
        return JSONResponse(
            error_body(
                "invalid_request", f"the request is not valid: {summary}", problems=problems
            ),
            status_code=422,
        )

    @app.exception_handler(StarletteHTTPException)
    async def _http(_request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = _CODES.get(exc.status_code, "http_error")
        return JSONResponse(
            error_body(code, str(exc.detail)), status_code=exc.status_code, headers=exc.headers
        )
