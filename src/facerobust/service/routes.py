"""The gate's endpoints (see :mod:`facerobust.service.app`)."""

from __future__ import annotations

import math
import time
from typing import Any

from fastapi import FastAPI, Request

from facerobust.service.gate import (
    ADMIN_KEY_ID,
    REJECT,
    UNKNOWN,
    Gate,
    GateError,
    LogEntry,
    OptText,
    Photo,
    Photos,
    Text,
)
from facerobust.service.storage import CLIENT_ROLES, format_roles, parse_roles
from facerobust.system import Gallery


def _verify(gate: Gate, entry: LogEntry, claimed: str, photo: Photo) -> dict[str, Any]:
    probe = gate.probe(photo, "photo", entry)
    _, templates = gate.store.templates(claimed)
    decision = gate.system.verify(probe, claimed, templates)
    outcome = "accept" if decision.accepted else REJECT
    entry.outcome, entry.score, entry.flags = outcome, decision.distance, decision.flags
    out: dict[str, Any] = {"decision": outcome, "claimed_identity": claimed}
    if gate.config.gate.expose_scores:
        out.update(score=decision.distance, threshold=gate.system.threshold)
    return out


def _identify(gate: Gate, entry: LogEntry, photo: Photo) -> dict[str, Any]:
    probe = gate.probe(photo, "photo", entry)
    names, templates = gate.store.templates()
    decision = gate.system.identify(probe, Gallery(tuple(names), templates))
    entry.score, entry.flags = decision.distance, dict(probe.flags)
    matched = decision.identity if decision.accepted else None
    if matched is not None and gate.identity_locked(matched):
        entry.flags.update(reason="matched identity is locked out", locked_identity=matched)
        matched = None  # a locked-out identity is never named
    entry.outcome, entry.claimed = ("match", matched) if matched else (UNKNOWN, None)
    out: dict[str, Any] = {"identity": matched or UNKNOWN}
    hidden = "reason" in entry.flags  # the score would betray the locked-out match
    if gate.config.gate.expose_scores and decision.distance is not None and not hidden:
        out.update(score=decision.distance, threshold=gate.system.threshold)
    return out


def add_routes(app: FastAPI, gate: Gate) -> None:
    @app.get("/healthz", summary="liveness: 200 when the gate answers (the system's "
             "description only with a valid key)")
    def healthz(request: Request) -> dict[str, Any]:
        if gate.known_key(request) is None:
            return {"status": "ok"}
        return {"status": "ok", **gate.system.describe()}

    @app.post("/enroll", summary="enroll photos of an identity (enroll or admin role)")
    def enroll(request: Request, identity: Text, photos: Photos) -> dict[str, Any]:
        key = gate.auth(request, roles=("enroll", "admin"))
        name = gate.identity(identity, "identity")
        if len(photos) > gate.limits.max_photos:
            raise GateError(413, "photos", f"{len(photos)} photos; at most "
                            f"{gate.limits.max_photos} per request")
        probes = [gate.probe(p, f"photos[{i}]") for i, p in enumerate(photos)]
        added = gate.store.enroll(name, [(p.sha256, p.embedding) for p in probes])
        gate.store.log(endpoint="enroll", key_id=key.key_id, outcome="enrolled", claimed=name,
                       probe_sha256=probes[0].sha256, flags={"photos": len(probes),
                                                             "added": added})
        return {"identity": name, "added": added, "photos": len(probes)}

    @app.post("/verify", summary="does the photo show the claimed identity?")
    def verify(request: Request, claimed_identity: Text, photo: Photo) -> dict[str, Any]:
        key = gate.auth(request, roles=("verify",))
        claimed = gate.identity(claimed_identity, "claimed_identity")
        gate.throttle(gate.key_limiter, key.key_id, "Authorization")
        gate.throttle(gate.identity_limiter, claimed, "claimed_identity")
        with gate.budgeted("verify", key, claimed) as entry:
            return _verify(gate, entry, claimed, photo)

    @app.post("/identify", summary="who is in the photo? (identity or 'unknown')")
    def identify(request: Request, photo: Photo) -> dict[str, Any]:
        key = gate.auth(request, roles=("identify",))
        gate.check_identify(key)
        gate.throttle(gate.key_limiter, key.key_id, "Authorization")
        with gate.budgeted("identify", key, None) as entry:
            return _identify(gate, entry, photo)

    @app.post("/unlock", summary="reset the failure counts of an identity and/or a key (admin)")
    def unlock(request: Request, identity: OptText = None,
               key_id: OptText = None) -> dict[str, Any]:
        admin = gate.auth(request, roles=("admin",))
        name = None if identity is None else gate.identity(identity, "identity")
        if name is None and not key_id:
            raise GateError(422, "identity", "give 'identity' and/or 'key_id' to unlock")
        gate.unlock(admin.key_id, identity=name, key_id=key_id or None)
        return {"unlocked": {"identity": name, "key_id": key_id or None}}

    _add_key_routes(app, gate)


def _add_key_routes(app: FastAPI, gate: Gate) -> None:
    @app.post("/keys", summary="create an API key (admin); shown once")
    def new_key(request: Request, role: OptText = None,
                expires_in_s: OptText = None) -> dict[str, Any]:
        admin = gate.auth(request, roles=("admin",))
        roles = parse_role_field(role)
        expires = None if expires_in_s is None else time.time() + positive(expires_in_s)
        key_id, key = gate.store.create_key(roles=roles, expires=expires)
        gate.store.log(endpoint="keys", key_id=admin.key_id, outcome="key-created",
                       flags={"created_key_id": key_id, "role": format_roles(roles),
                              "expires": expires})
        return {"key": key, "key_id": key_id, "role": format_roles(roles), "expires": expires}

    @app.get("/keys", summary="list the keys: ids, roles, creation, expiry, last use (admin)")
    def list_keys(request: Request) -> dict[str, Any]:
        gate.auth(request, roles=("admin",))
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
        return {"revoked": key_id}


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
