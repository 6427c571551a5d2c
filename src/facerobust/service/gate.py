"""The gate's state shared by its endpoints: the face system, its config, the store and the
rate limiters, with authentication, throttling and the rejection budget
(:class:`Gate`); the typed form fields and the identity check the routes use."""

from __future__ import annotations

import hashlib
import math
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated

from fastapi import File, Form, Request, UploadFile

from facerobust.data.capture import CaptureError
from facerobust.service import budget, names
from facerobust.service.audit_log import AuditRecord
from facerobust.service.budget import Policy, Refusal
from facerobust.service.config import GateConfig
from facerobust.service.limits import RateLimiter
from facerobust.service.storage import ApiKey, LogEntry, Store
from facerobust.service.tables import REJECT, UNKNOWN
from facerobust.system import FaceSystem, Probe

ADMIN_KEY_ID = "admin"  # the id of the configured admin key
REPEATABLE_FIELDS = frozenset({"photos"})  # the only form field sent more than once
AUDIT_SCOPE, KEY_SCOPE = "facerobust.audit", "facerobust.key"  # request.scope entries


class GateError(Exception):
    def __init__(self, status: int, field: str, message: str,
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status, self.field, self.message, self.headers = status, field, message, headers


class Gate:
    """State shared by the endpoints: the face system, its config, store, limiters."""

    def __init__(self, system: FaceSystem, config: GateConfig, store: Store,
                 admin_key: str) -> None:
        self.system, self.config, self.store = system, config, store
        lim = config.limits
        self.limits = lim
        self.key_limiter = RateLimiter(lim.key_rate, lim.key_burst)
        self.identity_limiter = RateLimiter(lim.identity_rate, lim.identity_burst)
        self.auth_fail_limiter = RateLimiter(lim.auth_fail_rate, lim.auth_fail_burst)
        self.policy = Policy(limit=lim.max_rejections,
                             pair_limit=lim.pair_rejections or lim.max_rejections,
                             window_s=lim.lockout_window_s, delay_s=lim.identity_delay_s,
                             max_delay_s=lim.identity_max_delay_s)
        store.ensure_key(admin_key, admin=True, key_id=ADMIN_KEY_ID)

    def known_key(self, request: Request) -> ApiKey | None:
        """The request's key when it sent a valid (live) one, else None (no error)."""
        scheme, _, key = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not key.strip():
            return None
        found = self.store.key_for(key.strip())
        return found if found is not None and _refusal(found) is None else None

    def client_address(self, request: Request) -> str:
        """The client's address: the peer, or -- when the peer is a trusted proxy
        (``gate.trusted_proxies``) -- the last ``X-Forwarded-For`` hop before it."""
        peer = request.client.host if request.client else "unknown"
        trusted = self.config.gate.trusted_proxies
        if peer not in trusted:
            return peer
        hops = [h.strip() for h in request.headers.get("x-forwarded-for", "").split(",")]
        return next((h for h in reversed(hops) if h and h not in trusted), peer)[:64]

    def authenticate(self, request: Request) -> ApiKey:
        """The request's live key (kept in the request for :meth:`auth`); 401 missing /
        unknown / expired / revoked, 429 when this client address failed too often. Runs
        before the body is read."""
        record = audit_record(request)
        self._auth_throttled(record.client)
        scheme, _, key = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not key.strip():
            raise self._auth_failed(record.client, "missing API key: send 'Authorization: "
                                    "Bearer <key>'")
        found = self.store.key_for(key.strip())
        reason = "unknown API key" if found is None else _refusal(found)
        if found is None or reason is not None:
            raise self._auth_failed(record.client, reason or "unknown API key")
        record.key_id = found.key_id
        request.scope[KEY_SCOPE] = found
        return found

    def auth(self, request: Request, *, roles: tuple[str, ...] = ()) -> ApiKey:
        """The request's key (see :meth:`authenticate`); 403 when it holds none of
        ``roles`` (naming them)."""
        found = request.scope.get(KEY_SCOPE)
        if not isinstance(found, ApiKey):
            found = self.authenticate(request)
        if roles and not found.roles & set(roles):
            raise GateError(403, "Authorization", f"this key lacks the {' or '.join(roles)} "
                            f"role (it has: {', '.join(sorted(found.roles))})")
        return found

    def _auth_throttled(self, address: str) -> None:
        wait = self.auth_fail_limiter.wait(address)
        if wait > 0:
            raise GateError(429, "Authorization", f"too many failed authentications from "
                            f"this address; retry in {wait:.2f} s",
                            {"Retry-After": str(max(1, math.ceil(wait)))})

    def _auth_failed(self, address: str, message: str) -> GateError:
        """Count a failed authentication against ``address`` and build its 401."""
        self.auth_fail_limiter.take(address)
        return GateError(401, "Authorization", message, {"WWW-Authenticate": "Bearer"})

    def throttle(self, limiter: RateLimiter, key: str, field: str) -> None:
        wait = limiter.take(key)
        if wait > 0:
            raise GateError(429, field, f"rate limit: {limiter.rate:g} requests/s "
                            f"(burst {limiter.burst}) exceeded; retry in {wait:.2f} s",
                            {"Retry-After": str(max(1, math.ceil(wait)))})

    @contextmanager
    def budgeted(self, request: Request, key: ApiKey,
                 claimed: str | None) -> Iterator[LogEntry]:
        """Check the failure budgets and count this request atomically (a ``pending`` log
        row; 403 / 429 per :mod:`~facerobust.service.budget`), then log what the body puts
        in the yielded entry (also in the audit record); a 4xx refusal of the probe is
        logged as ``invalid``."""
        endpoint = request.url.path.strip("/")
        row, refusal = budget.reserve(self.store, self.policy, endpoint=endpoint,
                                      key_id=key.key_id, claimed=claimed,
                                      delays=not key.admin)
        if row is None:
            raise self._refused(refusal)
        entry = LogEntry(claimed=claimed)
        try:
            yield entry
        except GateError as err:
            entry.outcome, entry.flags = "invalid", {**entry.flags, "error": err.message}
            raise
        finally:
            self.store.finish(row, entry)
            record = audit_record(request)
            record.outcome = entry.outcome
            record.details.update(score=entry.score, probe_sha256=entry.probe_sha256,
                                  flags=entry.flags, decision_row=row)

    def _refused(self, refusal: Refusal | None) -> GateError:
        window = f"in the last {self.limits.lockout_window_s:g} s"
        if refusal is None or refusal.scope == "key":
            n = refusal.failures if refusal else self.policy.limit
            return GateError(403, "Authorization", f"locked out: this key had {n} failed "
                             f"requests (rejections, unknown) {window}")
        if refusal.scope == "pair":
            return GateError(403, "claimed_identity", f"locked out: this key had "
                             f"{refusal.failures} rejections for this identity {window}")
        wait = refusal.retry_after
        return GateError(429, "claimed_identity", f"this identity had {refusal.failures} "
                         f"recent failed attempts; next attempt in {wait:.1f} s",
                         {"Retry-After": str(max(1, math.ceil(wait)))})

    def identity_locked(self, identity: str) -> bool:
        """Is ``identity`` under attack (so /identify must not name it)?"""
        return budget.under_attack(self.store, self.policy, identity)

    def unlock(self, by: str, *, identity: str | None, key_id: str | None) -> None:
        """Reset the counts (and the rate buckets) of an identity and/or a key."""
        budget.unlock(self.store, by, identity=identity, key_id=key_id)
        if identity is not None:
            self.identity_limiter.reset(identity)
        if key_id is not None:
            self.key_limiter.reset(key_id)

    def identity(self, request: Request, value: str, field: str) -> str:
        """The gallery's spelling of the identity ``value`` names (NFKC, case-folded
        comparison), else ``value`` normalised: variants are one identity; 422 naming
        ``field`` for a refused name (:mod:`~facerobust.service.names`)."""
        record = audit_record(request)
        record.identity_sent = value
        try:
            name = names.resolve(names.check_identity(value), self.store.identities())
        except names.BadName as err:
            raise GateError(422, field, str(err)) from None
        record.identity = name
        return name

    def check_identify(self, key: ApiKey) -> None:
        """``limits.identify``: "off" -> 404, "admin" -> 403 without the admin key."""
        mode = self.limits.identify
        if mode == "off":
            raise GateError(404, "identify", '/identify is disabled on this gate '
                            '(limits.identify = "off")')
        if mode == "admin" and not key.admin:
            raise GateError(403, "Authorization", '/identify needs the admin key on this gate '
                            '(limits.identify = "admin")')

    def read(self, upload: UploadFile, field: str) -> bytes:
        allowed = self.limits.content_types
        ctype = (upload.content_type or "").split(";")[0].strip().lower()
        if ctype not in allowed:
            raise GateError(415, field, f"content type {ctype or '(none)'!r} is not accepted; "
                            f"send one of {', '.join(allowed)}")
        data = upload.file.read(self.limits.max_bytes + 1)
        if len(data) > self.limits.max_bytes:
            raise GateError(413, field, f"file larger than the limit of "
                            f"{self.limits.max_bytes} bytes")
        if not data:
            raise GateError(422, field, "empty file")
        return data

    def probe(self, upload: UploadFile, field: str, entry: LogEntry | None = None) -> Probe:
        """The probe of an upload (its sha256 noted in ``entry``); a photo the system
        refuses is answered 4xx (and logged ``invalid`` by :meth:`budgeted`)."""
        data = self.read(upload, field)
        if entry is not None:
            entry.probe_sha256 = hashlib.sha256(data).hexdigest()
        try:
            probe = self.system.probe(data, field)
        except CaptureError as err:
            raise GateError(err.status, err.field, str(err)) from None
        self._one_face(probe, field, strict=entry is None)
        return probe

    def _one_face(self, probe: Probe, field: str, *, strict: bool) -> None:
        """``limits.multi_face``: a probe with another sizeable face is refused (422), or
        the largest face is used; enrollment photos (``strict``) always need one face."""
        lim = self.limits
        if probe.captured is None or not (strict or lim.multi_face == "reject"):
            return
        others = probe.captured.located.others(lim.multi_face_ratio)
        if others:
            why = "enrollment photos" if strict else 'limits.multi_face = "reject":'
            raise GateError(422, field, f"{others + 1} faces of similar size in the photo "
                            f"({why} one person only); send a photo of one person")


def _refusal(key: ApiKey) -> str | None:
    """Why a stored key no longer opens the gate (revoked, expired), else None."""
    if key.revoked is not None:
        return "API key revoked"
    if key.expires is not None and key.expires <= time.time():
        return "API key expired"
    return None


def audit_record(request: Request) -> AuditRecord:
    """This request's audit record (created by the app's middleware; a fresh one if none)."""
    record = request.scope.get(AUDIT_SCOPE)
    if not isinstance(record, AuditRecord):
        record = AuditRecord(request.method, request.url.path, "unknown")
        request.scope[AUDIT_SCOPE] = record
    return record


async def unique_form_fields(request: Request) -> None:
    """A form field sent twice is a 422 naming it (instead of silently taking the last)."""
    ctype = request.headers.get("content-type", "")
    if not ctype.startswith(("multipart/form-data", "application/x-www-form-urlencoded")):
        return
    names = [name for name, _ in (await request.form()).multi_items()]
    for name in dict.fromkeys(names):
        if name not in REPEATABLE_FIELDS and names.count(name) > 1:
            raise GateError(422, name, f"form field {name!r} was sent {names.count(name)} "
                            "times; send it once")


Photos = Annotated[list[UploadFile], File(description="one or more face photos")]
Photo = Annotated[UploadFile, File(description="a face photo (JPEG or PNG)")]
Text = Annotated[str, Form()]
OptText = Annotated[str | None, Form()]
__all__ = ["ADMIN_KEY_ID", "REJECT", "UNKNOWN", "Gate", "GateError", "LogEntry", "OptText",
           "Photo", "Photos", "Text", "audit_record", "unique_form_fields"]
