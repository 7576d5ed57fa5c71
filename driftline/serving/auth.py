"""Bearer-token auth for the prediction routes, as ASGI middleware around the service's app."""

from __future__ import annotations

import hmac
import json
from typing import Any

from driftline.errors import SpecError
from driftline.serving.config import PROTECTED_ROUTES, ServeConfig, resolve_token


class BearerAuth:
    """ASGI middleware: requests to the prediction routes must carry ``Authorization: Bearer <token>``.

    Health, readiness, metrics and the docs stay open, so probes and dashboards need no secret.
    """

    def __init__(self, app: Any, config: ServeConfig, protected: tuple[str, ...] = PROTECTED_ROUTES) -> None:
        # Resolved when the server builds its app, not at import, so `bentoml build` needs no token.
        token = resolve_token(config)
        if token is None:
            raise SpecError(f"{config.tag}: bearer auth is on but no token source is configured")
        self.app = app
        self.expected = f"Bearer {token}".encode()
        self.protected = protected

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "http" and scope["path"].rstrip("/") in self.protected:
            sent = dict(scope.get("headers") or []).get(b"authorization", b"")
            if not hmac.compare_digest(sent, self.expected):
                reason = "missing" if not sent else "wrong"
                body = json.dumps({"error": f"unauthorized: {reason} bearer token (Authorization: Bearer <token>)"})
                await send(
                    {
                        "type": "http.response.start",
                        "status": 401,
                        "headers": [(b"content-type", b"application/json"), (b"www-authenticate", b"Bearer")],
                    }
                )
                await send({"type": "http.response.body", "body": body.encode()})
                return
        await self.app(scope, receive, send)
