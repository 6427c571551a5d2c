"""The gate's endpoints (see :mod:`facerobust.service.app`)."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request

from facerobust.service.gate import (
    REJECT,
    UNKNOWN,
    Gate,
    GateError,
    LogEntry,
    OptText,
    Photo,
    Photos,
    Text,
    audit_record,
)
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

    @app.post("/enroll", summary="enroll photos of an identity (enroll or admin role); "
              "mode = append | replace is required when the identity is already enrolled")
    def enroll(request: Request, identity: Text, photos: Photos,
               mode: OptText = None) -> dict[str, Any]:
        key = gate.auth(request, roles=("enroll", "admin"))
        name = gate.identity(request, identity, "identity")
        replace = enroll_mode(mode, exists=name in gate.store.identities(), name=name)
        if len(photos) > gate.limits.max_photos:
            raise GateError(413, "photos", f"{len(photos)} photos; at most "
                            f"{gate.limits.max_photos} per request")
        probes = [gate.probe(p, f"photos[{i}]") for i, p in enumerate(photos)]
        added = gate.store.enroll(name, [(p.sha256, p.embedding) for p in probes],
                                  replace=replace)
        flags = {"photos": len(probes), "added": added, "mode": mode or "new"}
        gate.store.log(endpoint="enroll", key_id=key.key_id, outcome="enrolled", claimed=name,
                       probe_sha256=probes[0].sha256, flags=flags)
        record = audit_record(request)
        record.outcome = "enrolled"
        record.details.update(flags, probe_sha256=[p.sha256 for p in probes])
        return {"identity": name, "added": added, "photos": len(probes),
                "mode": "replace" if replace else "append"}

    @app.post("/verify", summary="does the photo show the claimed identity?")
    def verify(request: Request, claimed_identity: Text, photo: Photo) -> dict[str, Any]:
        key = gate.auth(request, roles=("verify",))
        claimed = gate.identity(request, claimed_identity, "claimed_identity")
        gate.throttle(gate.key_limiter, key.key_id, "Authorization")
        gate.throttle(gate.identity_limiter, claimed, "claimed_identity")
        with gate.budgeted(request, key, claimed) as entry:
            return _verify(gate, entry, claimed, photo)

    @app.post("/identify", summary="who is in the photo? (identity or 'unknown')")
    def identify(request: Request, photo: Photo) -> dict[str, Any]:
        key = gate.auth(request, roles=("identify",))
        gate.check_identify(key)
        gate.throttle(gate.key_limiter, key.key_id, "Authorization")
        with gate.budgeted(request, key, None) as entry:
            return _identify(gate, entry, photo)


def enroll_mode(mode: str | None, *, exists: bool, name: str) -> bool:
    """Whether an enrollment replaces the identity's templates: ``mode`` must be given
    (``append`` or ``replace``) when ``name`` is already enrolled (409 otherwise)."""
    if mode is not None and mode not in ("append", "replace"):
        raise GateError(422, "mode", f"mode must be 'append' or 'replace', got {mode!r}")
    if exists and mode is None:
        raise GateError(409, "mode", f"{name!r} is already enrolled: send mode=append to add "
                        "these photos or mode=replace to replace its templates")
    return mode == "replace"
