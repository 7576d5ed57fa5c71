"""The service's front door: malformed requests end as a 4xx with driftline's error body, never a 5xx.

:class:`RequestGuard` is ASGI middleware, outermost around the BentoML app. For every request it

- caps the body at ``serving.max_body_mb`` while it streams in: a ``Content-Length`` over the cap, or a chunked
  body that grows past it, is a 413 before the rest is read (the connection is then closed);
- on the prediction routes, takes JSON only: another ``Content-Type`` (multipart, form, pickle, text) or a
  charset other than UTF-8 is a 415, so no other parser ever sees the body;
- gives every 4xx answer one shape, :data:`REQUEST_ERROR` (``{"error": str, "detail": [{loc, msg, type}]}``) —
  BentoML's own 400s, 404s and 405s included — and logs it as one line, no traceback (BentoML's traceback for a
  request that failed validation is filtered out; a 5xx keeps its traceback);
- documents that body in the OpenAPI document (``/docs.json``): a ``RequestError`` schema, and 400, 413 and 415
  on each prediction route.

Plain ASGI and the standard library: no BentoML, so it is tested without a server.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from driftline.serving.requests import describe_errors

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

logger = logging.getLogger("driftline.service")

OPENAPI_PATH = "/docs.json"
JSON_TYPES = ("application/json",)
MAX_ERROR_BODY = 256 * 1024  # a 4xx body larger than this is not read back (it is replaced by its status line)

REQUEST_ERROR_DETAIL: dict[str, Any] = {
    "title": "RequestErrorDetail",
    "type": "object",
    "description": "One broken rule: where (loc, e.g. ['rows', 3, 'amount']), what (msg), and its kind (type).",
    "required": ["loc", "msg", "type"],
    "properties": {
        "loc": {"type": "array", "items": {"anyOf": [{"type": "string"}, {"type": "integer"}]}},
        "msg": {"type": "string"},
        "type": {"type": "string"},
    },
}
REQUEST_ERROR: dict[str, Any] = {
    "title": "RequestError",
    "type": "object",
    "description": "Why the request was refused: a one-line message and, for invalid fields, one entry per field.",
    "required": ["error", "detail"],
    "properties": {
        "error": {"type": "string"},
        "detail": {"type": "array", "items": {"$ref": "#/components/schemas/RequestErrorDetail"}},
    },
}
DOCUMENTED_ERRORS = {
    "400": "The body is not valid JSON for this route, or a field breaks the training schema (detail names it).",
    "401": "The bearer token is missing or wrong (when the spec asks for one).",
    "413": "The body is larger than serving.max_body_mb.",
    "415": "The Content-Type is not application/json (UTF-8).",
}


def error_body(error: str, detail: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """driftline's error body: ``{"error": ..., "detail": [...]}`` (an empty list when no field is at fault)."""
    return {"error": error, "detail": detail or []}


def normalise(status: int, body: bytes) -> dict[str, Any]:
    """Any 4xx answer (BentoML's, Starlette's, FastAPI's, ours) as driftline's error body."""
    try:
        data: Any = json.loads(body) if body else None
    except ValueError:
        data = None
    if isinstance(data, list) and len(data) == 1 and isinstance(data[0], dict):
        data = data[0]  # BentoML 1.4 answers its own 4xx exceptions with a one-element list
    if isinstance(data, dict):
        detail = data.get("detail")
        error = data.get("error")
        if not isinstance(error, str):
            error = detail if isinstance(detail, str) else f"request refused ({status})"
        items = []
        if isinstance(detail, list):
            for item in detail:
                if isinstance(item, dict):
                    loc = [part if isinstance(part, int | str) else str(part) for part in item.get("loc") or []]
                    items.append({"loc": loc, "msg": str(item.get("msg", "")), "type": str(item.get("type", ""))})
        return error_body(error, items)
    text = body.decode("utf-8", "replace").strip()[:500] if body else ""
    return error_body(text or f"request refused ({status})")


def summary(body: dict[str, Any], limit: int = 3) -> str:
    """The error body on one line: the message, then the first fields at fault."""
    line = body["error"]
    if body["detail"]:
        fields = describe_errors(body["detail"], limit=limit).split("\n")
        line += ": " + "; ".join("body" + f if f.startswith(":") else f for f in fields)
    return " ".join(line.split())[:1000]


def document_errors(document: dict[str, Any], routes: tuple[str, ...], *, auth: bool) -> dict[str, Any]:
    """The OpenAPI document with driftline's error body on each of ``routes`` (in place, and returned)."""
    schemas = document.setdefault("components", {}).setdefault("schemas", {})
    schemas["RequestError"] = REQUEST_ERROR
    schemas["RequestErrorDetail"] = REQUEST_ERROR_DETAIL
    reference = {"application/json": {"schema": {"$ref": "#/components/schemas/RequestError"}}}
    for path, item in document.get("paths", {}).items():
        if path.rstrip("/") not in routes:
            continue
        for operation in item.values():
            if not isinstance(operation, dict) or "responses" not in operation:
                continue
            responses = operation["responses"]
            for code in ("400", "401", "404", "413", "415"):
                responses.pop(code, None)
                responses.pop(int(code), None)
            for code, description in DOCUMENTED_ERRORS.items():
                if code != "401" or auth:
                    responses[code] = {"description": description, "content": reference}
    return document


def quiet_client_errors() -> None:
    """Drop BentoML's traceback and access-log line for a request it refused (4xx): the guard logs one line."""
    for name, kind in (("bentoml._internal.server.http_app", _ClientErrorFilter), ("bentoml.access", _AccessFilter)):
        target = logging.getLogger(name)
        if not any(isinstance(f, kind) for f in target.filters):
            target.addFilter(kind())


class _ClientErrorFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        if record.msg != "Exception on %s [%s]" or not record.exc_info or record.exc_info[1] is None:
            return True
        error = record.exc_info[1]
        if type(error).__name__ == "ValidationError" and type(error).__module__.startswith("pydantic"):
            return False
        code = getattr(getattr(error, "error_code", None), "value", 500)
        return not (isinstance(code, int) and 400 <= code < 500)


class _AccessFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args if isinstance(record.args, tuple) else ()
        return not (len(args) == 4 and isinstance(args[2], str) and args[2].startswith("status=4"))


class _Refused(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


class RequestGuard:
    """ASGI middleware: body cap, JSON only on ``routes``, one error body and one log line per 4xx (see module)."""

    def __init__(self, app: ASGIApp, *, max_body_bytes: int, routes: tuple[str, ...], auth: bool = False) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes
        self.routes = routes
        self.auth = auth
        quiet_client_errors()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        method, path = scope.get("method", "GET"), scope.get("path", "")
        client = scope.get("client") or ("-", 0)
        request = f"{method} {path} from {client[0]}:{client[1]}"  # as each 4xx is logged
        headers = _headers(scope)
        try:
            self._check_headers(method, path, headers)
            body = await self._read_body(receive)
        except _Refused as refused:
            await self._refuse(send, request, refused.status, refused.message, close=refused.status == 413)
            return
        if body is None:  # the client went away
            return
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        responder = _Responder(send, request, document=self._document if path == OPENAPI_PATH else None)
        try:
            await self.app(scope, replay, responder.send)
        except Exception:
            if responder.started:
                raise
            logger.exception("500 %s %s: unhandled error", method, path)
            await _send_json(send, 500, error_body("internal error; see the service log"))

    def _document(self, document: dict[str, Any]) -> dict[str, Any]:
        return document_errors(document, self.routes, auth=self.auth)

    def _check_headers(self, method: str, path: str, headers: dict[bytes, bytes]) -> None:
        length = headers.get(b"content-length")
        if length is not None:
            try:
                size = int(length)
            except ValueError:
                raise _Refused(400, f"Content-Length must be a whole number (got {length[:40]!r})") from None
            if size > self.max_body_bytes:
                raise _Refused(413, self._too_large(f"{size:,} bytes"))
        if method == "POST" and path.rstrip("/") in self.routes:
            raw = headers.get(b"content-type", b"application/json").decode("latin-1")
            media, _, params = raw.partition(";")
            media = media.strip().lower()
            if media not in JSON_TYPES:
                raise _Refused(415, f"Content-Type must be application/json (got {raw.strip()[:100]!r}) on {path}")
            for param in params.split(";"):
                name, _, value = param.partition("=")
                charset = value.strip().strip('"').lower()
                if name.strip().lower() == "charset" and charset not in ("utf-8", "utf8"):
                    raise _Refused(415, f"JSON must be UTF-8 (got charset={charset[:40]!r}) on {path}")

    async def _read_body(self, receive: Receive) -> bytes | None:
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return None
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_body_bytes:
                raise _Refused(413, self._too_large(f"more than {self.max_body_bytes:,} bytes"))
            chunks.append(chunk)
            if not message.get("more_body", False):
                return b"".join(chunks)

    def _too_large(self, got: str) -> str:
        mb = self.max_body_bytes / 2**20
        return f"request body must be at most {mb:g} MB (serving.max_body_mb; got {got})"

    async def _refuse(self, send: Send, request: str, status: int, message: str, *, close: bool) -> None:
        body = error_body(message)
        logger.warning("%d %s: %s", status, request, summary(body))
        await _send_json(send, status, body, close=close)


class _Responder:
    """Wraps ``send``: a 4xx body is rewritten as driftline's error body and logged; the OpenAPI document is
    completed; anything else passes through untouched."""

    def __init__(self, send: Send, request: str, document: Callable[[dict[str, Any]], dict[str, Any]] | None) -> None:
        self._send = send
        self.request = request
        self.document = document
        self.started = False
        self.held: Message | None = None  # the response start, while its body is collected
        self.chunks: list[bytes] = []
        self.size = 0

    async def send(self, message: Message) -> None:
        if message["type"] == "http.response.start":
            self.started = True
            status = message["status"]
            if 400 <= status < 500 or (self.document is not None and status == 200):
                self.held = message
                return
            await self._send(message)
            return
        if message["type"] != "http.response.body" or self.held is None:
            await self._send(message)
            return
        self.chunks.append(message.get("body", b""))
        self.size += len(self.chunks[-1])
        if self.size > MAX_ERROR_BODY:  # not an error body we know: give up rewriting, pass it on
            held, self.held = self.held, None
            await self._send(held)
            more = message.get("more_body", False)
            await self._send({"type": "http.response.body", "body": b"".join(self.chunks), "more_body": more})
            return
        if message.get("more_body", False):
            return
        held, self.held = self.held, None
        body = b"".join(self.chunks)
        status = held["status"]
        if status >= 400:
            error = normalise(status, body)
            logger.warning("%d %s: %s", status, self.request, summary(error))
            extra = [(k, v) for k, v in held.get("headers", []) if k.lower() in (b"www-authenticate", b"connection")]
            await _send_json(self._send, status, error, extra_headers=extra)
            return
        try:
            document = json.loads(body)
        except ValueError:
            document = None
        if isinstance(document, dict) and self.document is not None:
            await _send_json(self._send, status, self.document(document))
            return
        await self._send(held)
        await self._send({"type": "http.response.body", "body": body})


def _headers(scope: Scope) -> dict[bytes, bytes]:
    return {bytes(k).lower(): bytes(v) for k, v in scope.get("headers") or []}


async def _send_json(
    send: Send,
    status: int,
    body: dict[str, Any],
    *,
    close: bool = False,
    extra_headers: list[tuple[bytes, bytes]] | None = None,
) -> None:
    payload = json.dumps(body).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(payload)).encode())]
    headers += extra_headers or []
    if close:
        headers.append((b"connection", b"close"))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": payload})
