"""The access-control gate as a FastAPI application.

Endpoints (keys travel as ``Authorization: Bearer <key>``):

* ``POST /enroll`` (enroll or admin role) -- multipart ``identity`` + ``photos`` (1+ files).
* ``POST /verify`` -- ``claimed_identity`` + ``photo`` -> ``{"decision": "accept"|"reject"}``
  (plus ``score`` and ``threshold`` only when ``gate.expose_scores``).
* ``POST /identify`` -- ``photo`` -> ``{"identity": name | "unknown"}``.
* ``POST /keys`` (admin) -- optional ``role``, ``expires_in_s``: a new key (shown once, stored
  hashed) as ``{"key", "key_id", "role", "expires"}``; ``GET /keys`` lists them (never a key),
  ``DELETE /keys/{key_id}`` revokes one at once.
* ``POST /unlock`` (admin key) -- ``identity`` and/or ``key_id``: reset their failure counts.
* ``GET /healthz`` -- 200 when the gate is up; ``/docs`` and ``/openapi.json`` describe it.

Every error is a JSON body ``{"error": message, "field": name}`` with a 4xx status (413 too
large, 415 not an image, 422 no face / bad field, 401 key, 403 role / locked out, 429 rate
limited with ``Retry-After``); an unexpected failure is a bare 500 JSON without a trace. Every
decision is appended to the log (:class:`~facerobust.service.storage.Store`).
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from facerobust.service import routes
from facerobust.service.gate import Gate, GateError, unique_form_fields

LOG = logging.getLogger("facerobust.gate")


def _error(status: int, field: str | None, message: str,
           headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"error": message, "field": field}, status_code=status, headers=headers)


def create_app(gate: Gate) -> FastAPI:
    """The FastAPI app serving ``gate`` (see the module docstring for the endpoints)."""
    app = FastAPI(title="facerobust access-control gate", version="1",
                  description="Face verification gate built on facerobust's face system.",
                  dependencies=[Depends(unique_form_fields)])
    app.state.gate = gate
    _install_handlers(app, gate)
    routes.add_routes(app, gate)
    return app


def _install_handlers(app: FastAPI, gate: Gate) -> None:
    body_limit = gate.limits.max_bytes * (gate.limits.max_photos + 1)

    @app.middleware("http")
    async def limit_body(request: Request, call_next: Any) -> Any:
        if request.method in ("POST", "PUT", "PATCH"):
            length = request.headers.get("content-length")
            if length is None and "transfer-encoding" not in request.headers:
                length = "0"  # no body at all
            if length is None or not length.isdigit():
                return _error(411, "Content-Length", "requests need a Content-Length header")
            if int(length) > body_limit:
                return _error(413, "Content-Length", f"request body of {length} bytes exceeds "
                              f"the limit of {body_limit} bytes")
        return await call_next(request)

    @app.exception_handler(GateError)
    async def gate_error(_request: Request, err: GateError) -> JSONResponse:
        return _error(err.status, err.field, err.message, err.headers)

    @app.exception_handler(RequestValidationError)
    async def invalid(_request: Request, err: RequestValidationError) -> JSONResponse:
        first = err.errors()[0] if err.errors() else {}
        loc = [str(p) for p in first.get("loc", ()) if p not in ("body", "query")]
        field = loc[0] if loc else None
        msg = str(first.get("msg", "invalid request"))
        if first.get("type") == "missing":
            msg = f"missing form field {field!r}"
        return _error(422, field, msg)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_request: Request, err: StarletteHTTPException) -> JSONResponse:
        return _error(err.status_code, None, str(err.detail))

    @app.exception_handler(Exception)
    async def crash(_request: Request, err: Exception) -> JSONResponse:
        LOG.exception("unexpected error: %s", err)
        return _error(500, None, "internal error (logged on the gate)")


__all__ = ["create_app"]
