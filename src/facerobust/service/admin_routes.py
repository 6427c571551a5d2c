"""The gate's admin endpoints (see :mod:`facerobust.service.app`): keys, unlocking, the
enrolled identities and the audit log. Each needs the admin role and is audited."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Request

from facerobust.service import audit_log
from facerobust.service.gate import ADMIN_KEY_ID, Gate, GateError, OptText, audit_record
from facerobust.service.storage import format_roles, parse_roles
from facerobust.service.tables import CLIENT_ROLES


def add_routes(app: FastAPI, gate: Gate) -> None:
    _add_unlock(app, gate)
    _add_key_routes(app, gate)
    _add_identity_routes(app, gate)
    _add_log_route(app, gate)


def _done(request: Request, outcome: str, **details: Any) -> None:
    """Note an admin action's outcome in this request's audit record."""
    record = audit_record(request)
    record.outcome = outcome
    record.details.update(details)


def _add_unlock(app: FastAPI, gate: Gate) -> None:
    @app.post("/unlock", summary="reset the failure counts of an identity and/or a key (admin)")
    def unlock(request: Request, identity: OptText = None,
               key_id: OptText = None) -> dict[str, Any]:
        admin = gate.auth(request, roles=("admin",))
        name = None if identity is None else gate.identity(request, identity, "identity")
        if name is None and not key_id:
            raise GateError(422, "identity", "give 'identity' and/or 'key_id' to unlock")
        gate.unlock(admin.key_id, identity=name, key_id=key_id or None)
        _done(request, "unlocked", unlocked_key_id=key_id or None)
        return {"unlocked": {"identity": name, "key_id": key_id or None}}


def _add_key_routes(app: FastAPI, gate: Gate) -> None:
    @app.post("/keys", summary="create an API key (admin); shown once")
    def new_key(request: Request, role: OptText = None,
                expires_in_s: OptText = None) -> dict[str, Any]:
        admin = gate.auth(request, roles=("admin",))
        roles = parse_role_field(role)
        expires = None if expires_in_s is None else time.time() + positive(expires_in_s)
        key_id, key = gate.store.create_key(roles=roles, expires=expires)
        flags = {"created_key_id": key_id, "role": format_roles(roles), "expires": expires}
        gate.store.log(endpoint="keys", key_id=admin.key_id, outcome="key-created", flags=flags)
        _done(request, "key-created", **flags)
        return {"key": key, "key_id": key_id, "role": format_roles(roles), "expires": expires}

    @app.get("/keys", summary="list the keys: ids, roles, creation, expiry, last use (admin)")
    def list_keys(request: Request) -> dict[str, Any]:
        gate.auth(request, roles=("admin",))
        _done(request, "listed")
        return {"keys": gate.store.list_keys()}

    @app.delete("/keys/{key_id}", summary="revoke a key at once (admin)")
    def revoke_key(request: Request, key_id: str) -> dict[str, Any]:
        admin = gate.auth(request, roles=("admin",))
        if key_id == ADMIN_KEY_ID:
            raise GateError(422, "key_id", "the configured admin key cannot be revoked; "
                            "change gate.admin_key / $FACEROBUST_GATE_ADMIN_KEY instead")
        if not gate.store.revoke_key(key_id):
            raise GateError(404, "key_id", f"no live key with id {key_id!r}")
        gate.store.log(endpoint="keys", key_id=admin.key_id, outcome="key-revoked",
                       flags={"revoked_key_id": key_id})
        _done(request, "key-revoked", revoked_key_id=key_id)
        return {"revoked": key_id}


def _add_identity_routes(app: FastAPI, gate: Gate) -> None:
    @app.get("/identities", summary="the enrolled identities and their template counts "
             "(admin)")
    def identities(request: Request) -> dict[str, Any]:
        gate.auth(request, roles=("admin",))
        counts = gate.store.gallery_counts()
        _done(request, "listed")
        return {"identities": [{"identity": name, "templates": counts.get(name, 0)}
                               for name in gate.store.identities()]}

    @app.delete("/identities/{name}", summary="delete an identity's templates (admin)")
    def delete_identity(request: Request, name: str) -> dict[str, Any]:
        gate.auth(request, roles=("admin",))
        found = gate.identity(request, name, "name")
        deleted = gate.store.delete_identity(found)
        if not deleted:
            raise GateError(404, "name", f"{found!r} is not enrolled")
        _done(request, "identity-deleted", templates=deleted)
        return {"deleted": found, "templates": deleted}


@dataclass
class LogQuery:
    """``GET /log``'s query parameters: the page (``after_id``, ``limit``), exact-match
    filters (:data:`~facerobust.service.audit_log.FILTERS`) and a time range."""

    after_id: int = 0
    limit: int = 100
    key_id: str | None = None
    identity: str | None = None
    outcome: str | None = None
    status: int | None = None
    path: str | None = None
    client: str | None = None
    since: float | None = None
    until: float | None = None

    def filters(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in audit_log.FILTERS if getattr(self, k) is not None}


def _add_log_route(app: FastAPI, gate: Gate) -> None:
    @app.get("/log", summary="the audit log, oldest first, paged by after_id (admin)")
    def log(request: Request, q: Annotated[LogQuery, Depends()]) -> dict[str, Any]:
        gate.auth(request, roles=("admin",))
        try:
            rows = audit_log.page(gate.store, after_id=q.after_id, limit=q.limit,
                                  filters=q.filters(), since=q.since, until=q.until)
        except ValueError as err:
            raise GateError(422, "limit", str(err)) from None
        _done(request, "listed", entries=len(rows))
        return {"entries": rows,
                "next_after_id": rows[-1]["id"] if len(rows) == q.limit else None}


def parse_role_field(text: str | None) -> frozenset[str]:
    """The ``role`` form field (comma- or space-separated); absent = a client's roles."""
    if text is None:
        return CLIENT_ROLES
    try:
        return parse_roles(text)
    except ValueError as err:
        raise GateError(422, "role", str(err)) from None


def positive(text: str) -> float:
    """The ``expires_in_s`` form field: a finite number of seconds > 0."""
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not math.isfinite(value) or value <= 0:
        raise GateError(422, "expires_in_s", f"must be a number of seconds > 0, got {text!r}")
    return value
