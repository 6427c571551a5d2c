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
from facerobust.service.config import GateConfig
from facerobust.service.limits import RateLimiter
from facerobust.service.storage import REJECT, UNKNOWN, ApiKey, Budget, LogEntry, Store
from facerobust.system import FaceSystem, Probe

MAX_IDENTITY = 200


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
        store.ensure_key(admin_key, admin=True, key_id="admin")

    def auth(self, request: Request, *, admin: bool = False) -> ApiKey:
        header = request.headers.get("authorization", "")
        scheme, _, key = header.partition(" ")
        if scheme.lower() != "bearer" or not key.strip():
            raise GateError(401, "Authorization", "missing API key: send 'Authorization: "
                            "Bearer <key>'", {"WWW-Authenticate": "Bearer"})
        found = self.store.key_for(key.strip())
        if found is None:
            raise GateError(401, "Authorization", "unknown API key",
                            {"WWW-Authenticate": "Bearer"})
        if admin and not found.admin:
            raise GateError(403, "Authorization", "this endpoint needs the admin key")
        return found

    def throttle(self, limiter: RateLimiter, key: str, field: str) -> None:
        wait = limiter.take(key)
        if wait > 0:
            raise GateError(429, field, f"rate limit: {limiter.rate:g} requests/s "
                            f"(burst {limiter.burst}) exceeded; retry in {wait:.2f} s",
                            {"Retry-After": str(max(1, math.ceil(wait)))})

    def budget(self) -> Budget:
        return Budget(self.limits.max_rejections, time.time() - self.limits.lockout_window_s)

    @contextmanager
    def budgeted(self, endpoint: str, key_id: str, claimed: str | None) -> Iterator[LogEntry]:
        """Check the failure budget and count this request atomically (a ``pending`` log row,
        403 when the key or the claimed identity is locked out), then log what the body puts
        in the yielded entry; a 4xx refusal of the probe is logged as ``invalid``."""
        row, over = self.store.reserve(endpoint=endpoint, key_id=key_id, claimed=claimed,
                                       budget=self.budget())
        if row is None:
            raise self._locked_out(over)
        entry = LogEntry(claimed=claimed)
        try:
            yield entry
        except GateError as err:
            entry.outcome, entry.flags = "invalid", {**entry.flags, "error": err.message}
            raise
        finally:
            self.store.finish(row, entry)

    def _locked_out(self, over: str | None) -> GateError:
        n, window = self.limits.max_rejections, self.limits.lockout_window_s
        if over == "key":
            return GateError(403, "Authorization", f"locked out: this key had {n} failed "
                             f"requests (rejections, unknown) in the last {window:g} s")
        return GateError(403, "claimed_identity", f"locked out: {n} rejections for this "
                         f"identity in the last {window:g} s")

    def identity_locked(self, identity: str) -> bool:
        """Is ``identity`` under lock-out (so /identify must not name it)?"""
        budget = self.budget()
        return budget.limit > 0 and self.store.rejections_since(
            budget.since, claimed=identity) >= budget.limit

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
            return self.system.probe(data, field)
        except CaptureError as err:
            raise GateError(err.status, err.field, str(err)) from None


def check_identity(value: str, field: str) -> str:
    value = value.strip()
    if not value or len(value) > MAX_IDENTITY or not value.isprintable():
        raise GateError(422, field, f"must be 1-{MAX_IDENTITY} printable characters")
    return value


Photos = Annotated[list[UploadFile], File(description="one or more face photos")]
Photo = Annotated[UploadFile, File(description="a face photo (JPEG or PNG)")]
Text = Annotated[str, Form()]
__all__ = ["REJECT", "UNKNOWN", "Gate", "GateError", "LogEntry", "Photo", "Photos", "Text",
           "check_identity"]
