"""The request guard in front of the service, on a stand-in ASGI app (the real service: tests/reliability/)."""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

import pytest
from pydantic import BaseModel, ValidationError

from driftline.serving.guard import OPENAPI_PATH, RequestGuard, document_errors, normalise, quiet_client_errors

ROUTES = ("/predict", "/predict_one", "/model")
CAP = 1000


class App:
    """Records what reached it and answers as told (BentoML's shapes by default)."""

    def __init__(self, status: int = 200, body: bytes = b'{"ok": true}', raises: bool = False) -> None:
        self.status, self.body, self.raises = status, body, raises
        self.seen: list[bytes] = []

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        message = await receive()
        self.seen.append(message.get("body", b""))
        if self.raises:
            raise RuntimeError("boom")
        await send({"type": "http.response.start", "status": self.status, "headers": [(b"x-app", b"1")]})
        await send({"type": "http.response.body", "body": self.body[:3], "more_body": True})
        await send({"type": "http.response.body", "body": self.body[3:]})


def call(
    app: Any, path: str = "/predict", body: bytes = b"{}", headers: dict[str, str] | None = None, chunk: int = 0
) -> tuple[int, dict[str, str], bytes, int]:
    """Send one request through ``app``; return status, headers, body and how many body chunks were read."""
    chunks = [body[i : i + chunk] for i in range(0, len(body), chunk)] if chunk else [body]
    reads = 0

    async def receive() -> dict[str, Any]:
        nonlocal reads
        reads += 1
        if reads > len(chunks):
            return {"type": "http.disconnect"}
        return {"type": "http.request", "body": chunks[reads - 1], "more_body": reads < len(chunks)}

    sent: list[dict[str, Any]] = []

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    raw = {"content-type": "application/json", **(headers or {})}
    scope = {
        "type": "http",
        "method": "GET" if path in (OPENAPI_PATH, "/health") else "POST",
        "path": path,
        "client": ("127.0.0.1", 5555),
        "headers": [(k.encode(), v.encode()) for k, v in raw.items()],
    }
    asyncio.run(app(scope, receive, send))
    start = sent[0]
    answer = b"".join(m.get("body", b"") for m in sent[1:])
    return start["status"], {k.decode(): v.decode() for k, v in start["headers"]}, answer, reads


def guard(app: Any, auth: bool = False) -> RequestGuard:
    return RequestGuard(app, max_body_bytes=CAP, routes=ROUTES, auth=auth)


@pytest.mark.parametrize(
    ("content_type", "says"),
    [
        ("multipart/form-data", "Content-Type must be application/json (got 'multipart/form-data') on /predict"),
        ("multipart/form-data; boundary=x", "got 'multipart/form-data; boundary=x'"),
        ("application/x-www-form-urlencoded", "Content-Type must be application/json"),
        ("application/vnd.bentoml+pickle", "Content-Type must be application/json"),
        ("text/plain", "Content-Type must be application/json"),
        ("application/json; charset=latin-1", "JSON must be UTF-8 (got charset='latin-1')"),
    ],
)
def test_only_json_reaches_the_prediction_routes(content_type: str, says: str) -> None:
    app = App()
    status, headers, body, _ = call(guard(app), headers={"content-type": content_type})
    assert status == 415 and headers["content-type"] == "application/json"
    assert json.loads(body) == {"error": json.loads(body)["error"], "detail": []} and says in json.loads(body)["error"]
    assert app.seen == []  # no parser behind the guard saw the body


def test_json_with_or_without_a_utf8_charset_passes_through_untouched() -> None:
    for content_type in ("application/json", "application/json; charset=UTF-8", "Application/JSON"):
        app = App()
        status, headers, body, _ = call(guard(app), body=b'{"rows": []}', headers={"content-type": content_type})
        assert (status, body, headers["x-app"]) == (200, b'{"ok": true}', "1")
        assert app.seen == [b'{"rows": []}']
    app = App()
    assert call(guard(app), body=b"x" * 999, chunk=100)[0] == 200 and app.seen == [b"x" * 999]  # reassembled


def test_a_body_over_the_cap_is_refused_before_it_is_read() -> None:
    app = App()
    status, headers, body, reads = call(guard(app), body=b"x" * 5000, headers={"content-length": "5000"})
    assert status == 413 and reads == 0 and app.seen == []
    assert json.loads(body)["error"] == (
        "request body must be at most 0.000953674 MB (serving.max_body_mb; got 5,000 bytes)"
    )
    assert headers["connection"] == "close"


def test_a_streamed_body_is_cut_off_once_it_passes_the_cap() -> None:
    app = App()
    status, _, body, reads = call(guard(app), body=b"x" * 100_000, chunk=400)  # no Content-Length: chunked
    assert status == 413 and app.seen == []
    assert reads == 3  # 1,200 bytes read of 100,000: the rest never entered memory
    assert "got more than 1,000 bytes" in json.loads(body)["error"]


def test_a_content_length_that_is_no_number_is_a_400() -> None:
    status, _, body, _ = call(guard(App()), headers={"content-length": "ten"})
    assert status == 400 and "Content-Length must be a whole number (got b'ten')" in json.loads(body)["error"]


BENTOML_400 = {
    "error": "2 validation error for Input",
    "detail": [
        {
            "type": "missing",
            "loc": ["rows", 0, "amount"],
            "msg": "Field required",
            "url": "https://errors.pydantic.dev",
        },
        {"type": "json_invalid", "loc": [], "msg": "Invalid JSON: EOF"},
    ],
}


@pytest.mark.parametrize(
    ("status", "answer", "expected"),
    [
        (400, json.dumps(BENTOML_400).encode(), None),
        (415, json.dumps([{"error": "pickle is not allowed"}]).encode(), {"error": "pickle is not allowed"}),
        (404, b"Not Found", {"error": "Not Found"}),
        (404, b'{"detail": "Not Found"}', {"error": "Not Found"}),
        (405, b"", {"error": "request refused (405)"}),
        (400, b'{"error": 3, "detail": ["x", {"loc": [{"a": 1}], "msg": 2}]}', None),
    ],
)
def test_every_client_error_has_one_body_and_one_log_line(
    status: int, answer: bytes, expected: dict[str, Any] | None, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    code, headers, body, _ = call(guard(App(status, answer)))
    error = json.loads(body)
    assert (
        code == status and headers["content-type"] == "application/json" and int(headers["content-length"]) == len(body)
    )
    assert set(error) == {"error", "detail"} and isinstance(error["error"], str)
    assert all(set(item) == {"loc", "msg", "type"} for item in error["detail"])
    if expected is not None:
        assert error == {**expected, "detail": []}
    (record,) = caplog.records
    assert record.levelno == logging.WARNING and record.exc_info is None
    assert record.getMessage().startswith(f"{status} POST /predict from 127.0.0.1:5555: ")
    assert "\n" not in record.getMessage()


def test_a_validation_error_is_logged_with_the_fields_it_names(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    _, _, body, _ = call(guard(App(400, json.dumps(BENTOML_400).encode())))
    assert json.loads(body)["detail"] == [
        {"loc": ["rows", 0, "amount"], "msg": "Field required", "type": "missing"},
        {"loc": [], "msg": "Invalid JSON: EOF", "type": "json_invalid"},
    ]
    assert caplog.records[0].getMessage() == (
        "400 POST /predict from 127.0.0.1:5555: 2 validation error for Input: "
        "rows[0].amount: Field required; body: Invalid JSON: EOF"
    )


def test_an_unhandled_error_is_a_500_with_the_same_body(caplog: pytest.LogCaptureFixture) -> None:
    status, _, body, _ = call(guard(App(raises=True)))
    assert status == 500 and json.loads(body) == {"error": "internal error; see the service log", "detail": []}
    assert caplog.records[0].exc_info is not None  # a server error keeps its traceback


def test_the_openapi_document_describes_the_error_body() -> None:
    document = {
        "paths": {
            "/predict": {"post": {"responses": {"200": {}, "400": {"$ref": "InvalidArgument"}, "500": {}}}},
            "/predict_one": {"post": {"responses": {"200": {}}}},
            "/health": {"get": {"responses": {"200": {}}}},
        },
        "components": {"schemas": {"InvalidArgument": {}}},
    }
    status, _, body, _ = call(guard(App(200, json.dumps(document).encode()), auth=True), path=OPENAPI_PATH)
    served = json.loads(body)
    assert status == 200
    assert served == document_errors(json.loads(json.dumps(document)), ROUTES, auth=True)
    for route in ("/predict", "/predict_one"):
        responses = served["paths"][route]["post"]["responses"]
        assert set(responses) >= {"200", "400", "401", "413", "415"}
        assert responses["400"]["content"]["application/json"]["schema"] == {
            "$ref": "#/components/schemas/RequestError"
        }
    assert set(served["paths"]["/health"]["get"]["responses"]) == {"200"}
    schema = served["components"]["schemas"]["RequestError"]
    assert schema["required"] == ["error", "detail"]
    no_auth = document_errors(json.loads(json.dumps(document)), ROUTES, auth=False)
    assert "401" not in no_auth["paths"]["/predict"]["post"]["responses"]


def test_normalised_bodies_match_the_documented_schema() -> None:
    import jsonschema_rs as jsonschema  # pinned in uv.lock (schemathesis): a skip would hide a broken install

    schema = document_errors({"paths": {}}, ROUTES, auth=False)["components"]["schemas"]
    request_error = json.loads(
        json.dumps(schema["RequestError"]).replace("#/components/schemas/", "#/definitions/")
    ) | {"definitions": schema}
    validator = jsonschema.validator_for(request_error)
    for status, answer in [(400, json.dumps(BENTOML_400).encode()), (404, b"Not Found"), (400, b"[1, 2]")]:
        assert validator.is_valid(normalise(status, answer))


def test_bentoml_tracebacks_and_access_lines_for_client_errors_are_dropped() -> None:
    quiet_client_errors()

    class Row(BaseModel):
        amount: float

    def record(name: str, msg: str, args: tuple[Any, ...], error: BaseException | None) -> logging.LogRecord:
        exc_info = (type(error), error, None) if error else None
        return logging.getLogger(name).makeRecord(name, logging.ERROR, __file__, 1, msg, args, exc_info)

    try:
        Row.model_validate({"amount": "x"})
    except ValidationError as error:
        invalid = error
    http_app = logging.getLogger("bentoml._internal.server.http_app")
    assert not http_app.filter(record(http_app.name, "Exception on %s [%s]", ("/predict", "POST"), invalid))
    assert http_app.filter(record(http_app.name, "Exception on %s [%s]", ("/predict", "POST"), RuntimeError("x")))
    access = logging.getLogger("bentoml.access")
    line = "%s (%s) (%s) %.3fms"
    assert not access.filter(record(access.name, line, ("a", "method=POST", "status=400,type=x", 1.0), None))
    assert access.filter(record(access.name, line, ("a", "method=POST", "status=200,type=x", 1.0), None))
    assert access.filter(record(access.name, line, ("a", "method=POST", "status=500,type=x", 1.0), None))
