"""The gate's endpoints (see :mod:`facerobust.service.app`)."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request

from facerobust.service.gate import REJECT, Gate, GateError, Photo, Photos, Text, check_identity
from facerobust.system import Gallery


def _verify(gate: Gate, key_id: str, claimed: str, photo: Photo) -> dict[str, Any]:
    probe = gate.probe(photo, "photo", log={"endpoint": "verify", "key_id": key_id,
                                            "claimed": claimed})
    _, templates = gate.store.templates(claimed)
    decision = gate.system.verify(probe, claimed, templates)
    outcome = "accept" if decision.accepted else REJECT
    gate.store.log(endpoint="verify", key_id=key_id, outcome=outcome, claimed=claimed,
                   probe_sha256=probe.sha256, score=decision.distance, flags=decision.flags)
    out: dict[str, Any] = {"decision": outcome, "claimed_identity": claimed}
    if gate.config.gate.expose_scores:
        out.update(score=decision.distance, threshold=gate.system.threshold)
    return out


def _identify(gate: Gate, key_id: str, photo: Photo) -> dict[str, Any]:
    probe = gate.probe(photo, "photo", log={"endpoint": "identify", "key_id": key_id})
    names, templates = gate.store.templates()
    decision = gate.system.identify(probe, Gallery(tuple(names), templates))
    identity = decision.identity if decision.accepted else "unknown"
    gate.store.log(endpoint="identify", key_id=key_id,
                   outcome="match" if decision.accepted else "unknown",
                   claimed=identity if decision.accepted else None,
                   probe_sha256=probe.sha256, score=decision.distance, flags=probe.flags)
    out: dict[str, Any] = {"identity": identity}
    if gate.config.gate.expose_scores and decision.distance is not None:
        out.update(score=decision.distance, threshold=gate.system.threshold)
    return out


def add_routes(app: FastAPI, gate: Gate) -> None:
    @app.get("/healthz", summary="liveness: 200 when the gate answers")
    def healthz() -> dict[str, Any]:
        return {"status": "ok", **gate.system.describe()}

    @app.post("/enroll", summary="enroll photos of an identity (admin key)")
    def enroll(request: Request, identity: Text, photos: Photos) -> dict[str, Any]:
        key = gate.auth(request, admin=True)
        name = check_identity(identity, "identity")
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
        key = gate.auth(request)
        claimed = check_identity(claimed_identity, "claimed_identity")
        gate.throttle(gate.key_limiter, key.key_id, "Authorization")
        gate.throttle(gate.identity_limiter, claimed, "claimed_identity")
        gate.check_budget(key.key_id, claimed)
        return _verify(gate, key.key_id, claimed, photo)

    @app.post("/identify", summary="who is in the photo? (identity or 'unknown')")
    def identify(request: Request, photo: Photo) -> dict[str, Any]:
        key = gate.auth(request)
        gate.throttle(gate.key_limiter, key.key_id, "Authorization")
        gate.check_budget(key.key_id, None)
        return _identify(gate, key.key_id, photo)

    @app.post("/keys", summary="create a client API key (admin key); shown once")
    def new_key(request: Request) -> dict[str, str]:
        gate.auth(request, admin=True)
        key_id, key = gate.store.create_key(admin=False)
        return {"key_id": key_id, "key": key}
