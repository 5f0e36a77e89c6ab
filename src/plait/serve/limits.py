"""The request body limit (--max-upload-mb), enforced before the body is parsed."""

from __future__ import annotations

from starlette.datastructures import Headers
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from plait.serve.requests import BadRequest


def too_large(max_bytes: int) -> BadRequest:
    return BadRequest.one(
        413,
        "body",
        f"the request body is over the {max_bytes / 1024 / 1024:.3g} MB limit (--max-upload-mb); "
        "send fewer rows or smaller files per request",
    )


class BodyLimit:
    """Refuse bodies over `max_bytes` with 413: at once from Content-Length, else while
    streaming (chunked uploads announce no length) by raising from `receive`, which
    the /predict handler turns into the same 413."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = Headers(scope=scope).get("content-length", "")
        if declared.isdigit() and int(declared) > self.max_bytes:
            error = too_large(self.max_bytes)
            await JSONResponse(error.body(), error.status)(scope, receive, send)
            return
        seen = 0

        async def counted() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_bytes:
                    raise too_large(self.max_bytes)
            return message

        await self.app(scope, counted, send)
