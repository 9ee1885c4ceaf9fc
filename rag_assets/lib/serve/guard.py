"""The ASGI layer in front of every route but health: bearer auth, body size, concurrency.

Pure ASGI (no per-request task or thread) so that it costs microseconds. Each refusal is a JSON error in
the OpenAI shape, sent before the app reads anything.
"""

from __future__ import annotations

import hashlib
import hmac

from starlette.responses import JSONResponse

OPEN_PATHS = frozenset({"/healthz", "/readyz"})
RETRY_AFTER_S = 1


def error_body(status: int, message: str, kind: str, param: str | None = None) -> dict:
    return {"error": {"message": message, "type": kind, "param": param, "code": status}}


def error_response(status: int, message: str, kind: str, param: str | None = None,
                   headers: dict | None = None) -> JSONResponse:
    return JSONResponse(error_body(status, message, kind, param), status_code=status, headers=headers)


def _digest(value: bytes) -> bytes:
    return hashlib.sha256(value).digest()  # equal lengths: compare_digest then leaks nothing, not even length


class Guard:
    def __init__(self, app, token: str | None, max_body_bytes: int, max_concurrency: int):
        self.app = app
        self.token_digest = _digest(token.encode()) if token else None
        self.max_body_bytes = max_body_bytes
        self.max_concurrency = max_concurrency
        self.in_flight = 0  # one event loop: no lock needed

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or scope["path"] in OPEN_PATHS or scope["method"] == "OPTIONS":
            return await self.app(scope, receive, send)
        headers = dict(scope["headers"])
        if self.token_digest is not None and not self._authorized(headers.get(b"authorization", b"")):
            return await error_response(401, "missing or wrong bearer token (Authorization: Bearer <RAG_API_TOKEN>)",
                                        "authentication_error",
                                        headers={"WWW-Authenticate": "Bearer"})(scope, receive, send)
        too_large = error_response(413, f"request body over {self.max_body_bytes} bytes", "invalid_request_error")
        length = headers.get(b"content-length")
        if length is not None:
            try:
                if int(length) > self.max_body_bytes:
                    return await too_large(scope, receive, send)
            except ValueError:
                return await error_response(400, "bad Content-Length", "invalid_request_error")(scope, receive, send)
        elif scope["method"] in ("POST", "PUT", "PATCH"):
            body = await self._read_body(receive)  # chunked: read within the bound, then replay
            if body is None:
                return await too_large(scope, receive, send)
            receive = _replay(body, receive)
        if self.in_flight >= self.max_concurrency:
            return await error_response(
                429, f"more than {self.max_concurrency} requests in flight (RAG_SERVE_MAX_CONCURRENCY): retry later",
                "rate_limit_error", headers={"Retry-After": str(RETRY_AFTER_S)})(scope, receive, send)
        self.in_flight += 1
        try:  # a streamed response holds its slot until its last event
            await self.app(scope, receive, send)
        finally:
            self.in_flight -= 1

    def _authorized(self, header: bytes) -> bool:
        scheme, _, token = header.partition(b" ")
        return scheme.lower() == b"bearer" and hmac.compare_digest(_digest(token.strip()), self.token_digest)

    async def _read_body(self, receive) -> bytes | None:
        chunks, size = [], 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                return b""
            chunks.append(message.get("body", b""))
            size += len(chunks[-1])
            if size > self.max_body_bytes:
                return None
            if not message.get("more_body"):
                return b"".join(chunks)


def _replay(body: bytes, receive):
    sent = False

    async def replay():
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()  # then the real channel: disconnects still reach the app

    return replay
