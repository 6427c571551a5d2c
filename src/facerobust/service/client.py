"""HTTP client of the gate, and the gate seen as a model so the library's black-box attacks
(Square, HopSkipJump) run against it unchanged.

:class:`RemoteVerifier` is an ``nn.Module`` whose input is a batch of *photos* (float NCHW RGB
in [0, 1]); each row is quantised to uint8, sent as a PNG to ``POST /verify`` with a fixed
claimed identity, and mapped to a one-column output the verification criteria understand:
the gate's score (distance) when it exposes scores, else 0 for accept and 1 for reject. With
``Impersonation(zeros(N, 1), threshold)`` the criterion's margin is then the gate's own
``threshold - score`` (or the decision alone). Every query is logged with its distance from the
clean photo, so queries-to-success at any budget is read off the log.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import cv2
import httpx
import numpy as np
import torch
from torch import nn

from facerobust.attacks.threat import LINF, Threat

NO_FACE_SCORE = 1e3  # what a photo the gate cannot use scores: far from any identity


class GateLockedOut(RuntimeError):
    """The gate locked this key or claimed identity out (HTTP 403 after too many rejections)."""


@dataclass
class Answer:
    accepted: bool
    score: float | None
    status: int
    error: str = ""
    identity: str = ""  # the name /identify answered ("" for unknown)


@dataclass
class ClientStats:
    requests: int = 0
    rate_limited: int = 0  # 429 answers
    waited_s: float = 0.0  # time slept on Retry-After


class GateClient:
    """``verify`` / ``enroll`` over HTTP; on 429 it sleeps ``Retry-After`` (when ``wait``) up
    to ``max_wait_s`` in total, on 403 lock-out it raises :class:`GateLockedOut`."""

    def __init__(self, url: str, key: str, *, wait: bool = True, max_wait_s: float = 600.0,
                 timeout: float = 60.0) -> None:

        if not url.startswith(("http://", "https://")):
            raise ValueError(f"gate URL must start with http:// or https://, got {url!r}")
        self.url = url.rstrip("/")
        self.http = httpx.Client(base_url=self.url, timeout=timeout,
                                 headers={"Authorization": f"Bearer {key}"})
        self.wait, self.max_wait_s = wait, max_wait_s
        self.stats = ClientStats()

    def close(self) -> None:
        self.http.close()

    def health(self) -> dict[str, Any]:
        r = self.http.get("/healthz")
        if r.status_code != 200:
            raise OSError(f"{self.url}/healthz answered {r.status_code}")
        return dict(r.json())

    def _post(self, path: str, method: str = "POST", **kwargs: Any) -> Any:
        while True:
            self.stats.requests += 1
            r = self.http.request(method, path, **kwargs)
            if r.status_code != 429:
                return r
            self.stats.rate_limited += 1
            delay = float(r.headers.get("retry-after", "1"))
            if not self.wait or self.stats.waited_s + delay > self.max_wait_s:
                raise GateLockedOut(f"rate limited ({r.json().get('error', '')}); waiting "
                                    f"budget of {self.max_wait_s:g} s spent")
            time.sleep(delay)
            self.stats.waited_s += delay

    def verify(self, photo: bytes, claimed: str, content_type: str = "image/png") -> Answer:
        r = self._post("/verify", data={"claimed_identity": claimed},
                       files={"photo": ("probe", photo, content_type)})
        body = r.json()
        if r.status_code == 403:
            raise GateLockedOut(str(body.get("error")))
        if r.status_code == 200:
            return Answer(body["decision"] == "accept", body.get("score"), 200)
        if r.status_code in (401, 404, 411):
            raise OSError(f"gate refused the request: {r.status_code} {body.get('error')}")
        return Answer(False, None, r.status_code, str(body.get("error", "")))

    def identify(self, photo: bytes, content_type: str = "image/jpeg") -> Answer:
        """``POST /identify``: ``Answer(accepted=a name came back, identity=the name)``;
        403 lock-out raises :class:`GateLockedOut`."""
        r = self._post("/identify", files={"photo": ("probe", photo, content_type)})
        body = r.json()
        if r.status_code == 403:
            raise GateLockedOut(str(body.get("error")))
        if r.status_code == 200:
            name = str(body.get("identity", "unknown"))
            known = name != "unknown"
            return Answer(known, body.get("score"), 200, identity=name if known else "")
        if r.status_code in (401, 404, 411):
            raise OSError(f"gate refused the request: {r.status_code} {body.get('error')}")
        return Answer(False, None, r.status_code, str(body.get("error", "")))

    def enroll(self, identity: str, photos: list[bytes], admin_key: str,
               mode: str = "append") -> dict[str, Any]:
        """Enroll ``photos`` of ``identity`` (``mode`` append or replace when it exists)."""
        files = [("photos", (f"p{i}.jpg", p, "image/jpeg")) for i, p in enumerate(photos)]
        r = self.http.post("/enroll", data={"identity": identity, "mode": mode}, files=files,
                           headers={"Authorization": f"Bearer {admin_key}"})
        if r.status_code == 422:
            raise ValueError(f"enrolling {identity!r}: {r.json().get('error')}")
        if r.status_code != 200:
            raise OSError(f"enrolling {identity!r} failed: {r.status_code} {r.text[:200]}")
        return dict(r.json())


def encode_png(x: torch.Tensor) -> bytes:
    """A (3, H, W) float photo in [0, 1] -> PNG bytes (rounded to uint8)."""

    arr = (x.detach().clamp(0, 1) * 255).round().to(torch.uint8).permute(1, 2, 0).numpy()
    ok, buf = cv2.imencode(".png", np.ascontiguousarray(arr[:, :, ::-1]),
                           [cv2.IMWRITE_PNG_COMPRESSION, 1])
    if not ok:
        raise ValueError("could not encode the probe as PNG")
    return bytes(buf)


@dataclass
class Query:
    linf: float  # distance of the submitted (uint8) photo from the clean photo, in [0, 1]
    l2: float
    accepted: bool
    score: float | None
    status: int = 200

    def size(self, threat: Threat) -> float:
        """The recorded distance under ``threat`` (one field per Lp threat, by its name)."""
        value = getattr(self, threat.name, None)
        if not isinstance(value, float):
            raise ValueError(f"a gate query records no {threat.name!r} distance")
        return value


class RemoteVerifier(nn.Module):
    """The gate's ``/verify`` for one claimed identity as a model over photos."""

    def __init__(self, client: GateClient, claimed: str, clean: torch.Tensor, *,
                 use_scores: bool = True) -> None:
        super().__init__()
        self.client, self.claimed, self.use_scores = client, claimed, use_scores
        self.clean_q = (clean.detach().clamp(0, 1) * 255).round() / 255  # (3, H, W)
        self.log: list[Query] = []

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = torch.empty(x.shape[0], 1, dtype=x.dtype)
        for i in range(x.shape[0]):
            ans = self.client.verify(encode_png(x[i]), self.claimed)
            q = (x[i].detach().clamp(0, 1) * 255).round() / 255 - self.clean_q
            self.log.append(Query(float(q.abs().max()), float(q.norm()), ans.accepted,
                                  ans.score, ans.status))
            if self.use_scores:
                out[i, 0] = NO_FACE_SCORE if ans.score is None else ans.score
            else:
                out[i, 0] = 0.0 if ans.accepted else 1.0
        return out.to(x.device)

    def queries_to_success(self, eps: float, threat: Threat = LINF) -> int | None:
        """1-based index of the first accepted query within ``eps`` of the clean photo."""
        for i, q in enumerate(self.log, 1):
            if q.accepted and q.size(threat) <= eps + 1e-6:
                return i
        return None
