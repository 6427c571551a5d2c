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
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException

from facerobust.service import admin_routes, audit_log, routes
from facerobust.service.audit_log import AuditRecord
from facerobust.service.gate import AUDIT_SCOPE, Gate, GateError, audit_record, unique_form_fields

LOG = logging.getLogger("facerobust.gate")
DOC_PATHS = {"/docs", "/docs/oauth2-redirect", "/openapi.json"}


def _error(status: int, field: str | None, message: str,
           headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"error": message, "field": field}, status_code=status, headers=headers)


def create_app(gate: Gate) -> FastAPI:
    """The FastAPI app serving ``gate`` (see the module docstring for the endpoints)."""
    docs = gate.config.gate.docs
    app = FastAPI(title="facerobust access-control gate", version="1",
                  description="Face verification gate built on facerobust's face system.",
                  dependencies=[Depends(unique_form_fields)],
                  docs_url="/docs" if docs else None, redoc_url=None,
                  openapi_url="/openapi.json" if docs else None)
    app.state.gate = gate
    _install_guard(app, gate)
    _install_handlers(app)
    routes.add_routes(app, gate)
    admin_routes.add_routes(app, gate)
    return app


def _install_guard(app: FastAPI, gate: Gate) -> None:
    """Every request but the public ones: key checked before the body is read, body size
    bounded, and the outcome appended to the audit log (whatever it is)."""
    public = {"/healthz"} | (DOC_PATHS if gate.config.gate.docs else set())
    body_limit = gate.limits.max_bytes * (gate.limits.max_photos + 1)

    @app.middleware("http")
    async def guard(request: Request, call_next: Any) -> Any:
        if request.url.path in public:
            return await call_next(request)
        record = AuditRecord(request.method[:8], request.url.path[:200],
                             gate.client_address(request))
        request.scope[AUDIT_SCOPE] = record
        try:
            await run_in_threadpool(gate.authenticate, request)
            _check_length(request, body_limit)
        except GateError as err:
            record.reason = err.message
            response: Any = _error(err.status, err.field, err.message, err.headers)
        else:
            try:
                response = await call_next(request)
            except Exception:  # answered as a bare 500 by the crash handler; audited here
                record.reason = record.reason or "internal error"
                await run_in_threadpool(audit_log.append, gate.store, record, 500)
                raise
        await run_in_threadpool(audit_log.append, gate.store, record, response.status_code)
        return response


def _check_length(request: Request, body_limit: int) -> None:
    if request.method not in ("POST", "PUT", "PATCH"):
        return
    length = request.headers.get("content-length")
    if length is None and "transfer-encoding" not in request.headers:
        length = "0"  # no body at all
    if length is None or not length.isdigit():
        raise GateError(411, "Content-Length", "requests need a Content-Length header")
    if int(length) > body_limit:
        raise GateError(413, "Content-Length", f"request body of {length} bytes exceeds the "
                        f"limit of {body_limit} bytes")


def _install_handlers(app: FastAPI) -> None:
    @app.exception_handler(GateError)
    async def gate_error(request: Request, err: GateError) -> JSONResponse:
        audit_record(request).reason = err.message
        return _error(err.status, err.field, err.message, err.headers)

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, err: RequestValidationError) -> JSONResponse:
        first = err.errors()[0] if err.errors() else {}
        loc = [str(p) for p in first.get("loc", ()) if p not in ("body", "query")]
        field = loc[0] if loc else None
        msg = str(first.get("msg", "invalid request"))
        if first.get("type") == "missing":
            msg = f"missing form field {field!r}"
        audit_record(request).reason = msg
        return _error(422, field, msg)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, err: StarletteHTTPException) -> JSONResponse:
        audit_record(request).reason = str(err.detail)
        return _error(err.status_code, None, str(err.detail))

    @app.exception_handler(Exception)
    async def crash(request: Request, err: Exception) -> JSONResponse:
        LOG.exception("unexpected error: %s", err)
        audit_record(request).reason = f"internal error: {type(err).__name__}"
        return _error(500, None, "internal error (logged on the gate)")


__all__ = ["create_app"]
