"""Any HTTP face-verification API as a black box for ``attack-gate``, from a description.

A ``[remote]`` table says where the verify endpoint is (``url``, ``method``), how the probe
travels (``body`` multipart or JSON with base64 images, the field names), the auth header,
and where the answer sits in the JSON response (dotted paths, list indices allowed:
``result.0.similarity``). Two-image APIs (CompreFace-style ``/verify``: probe + reference)
get the claimed identity's photo as ``reference_field``; APIs with their own enrollment get a
``[remote.enroll]`` table. Facerobust's own gate is one such description
(:func:`own_gate`). :class:`RemoteClient` answers like the native
:class:`~facerobust.service.client.GateClient`, so the black-box study runs unchanged.

>>> api = load_remote("compreface.toml")        # doctest: +SKIP
"""

from __future__ import annotations

import base64
import os
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from facerobust.core.toml_file import read_toml
from facerobust.models.base import accepts
from facerobust.service.client import Answer, GateClient, GateLockedOut

BODIES = ("multipart", "json")
METHODS = ("POST", "PUT")
SCORE_KINDS = ("distance", "similarity")


@dataclass(frozen=True)
class EnrollAPI:
    """``[remote.enroll]``: the endpoint that enrolls an identity with photos."""

    url: str
    identity_field: str = "identity"
    photo_field: str = "photos"
    auth_value: str = ""  # e.g. "Bearer <admin key>"; "" = the verify call's auth
    auth_env: str = ""
    mode_field: str = ""  # a form field saying how to enroll an existing identity, if any
    mode_value: str = "append"  # ... and its value (facerobust's gate: mode = append)


@dataclass(frozen=True)
class RemoteAPI:
    """``[remote]``: one HTTP face-verification API (see the module docstring)."""

    url: str
    method: str = "POST"
    body: str = "multipart"
    probe_field: str = "photo"
    reference_field: str = ""  # two-image APIs: the claimed identity's photo goes here
    identity_field: str = ""  # APIs with enrollment: the claimed identity's name goes here
    auth_header: str = "Authorization"
    auth_value: str = ""
    auth_env: str = ""  # read the auth value from this environment variable instead
    decision: str = ""  # JSON path of the decision (bool, or a string equal to accept_value)
    accept_value: str = "accept"
    score: str = ""  # JSON path of the score, when the API exposes one
    score_kind: str = "distance"  # distance (lower = same) | similarity (higher = same)
    similarity_max: float = 1.0  # a similarity s counts as the distance similarity_max - s
    threshold: float = 0.0  # on the score's own scale; 0 = none (or read from health_url)
    health_url: str = ""
    threshold_path: str = ""  # JSON path of the threshold in health_url's answer
    enroll: EnrollAPI | None = None

    def to_distance(self, score: float) -> float:
        return self.similarity_max - score if self.score_kind == "similarity" else score


def own_gate(url: str, key: str, admin_key: str) -> RemoteAPI:
    """Facerobust's own gate (``facerobust serve``) as a remote description."""
    base = url.rstrip("/")
    return RemoteAPI(
        url=f"{base}/verify", probe_field="photo", identity_field="claimed_identity",
        auth_value=f"Bearer {key}", decision="decision", accept_value="accept", score="score",
        health_url=f"{base}/healthz", threshold_path="threshold",
        enroll=EnrollAPI(url=f"{base}/enroll", auth_value=f"Bearer {admin_key}",
                         mode_field="mode"))


def _table(cls: type[Any], data: Any, where: str) -> dict[str, Any]:
    if not isinstance(data, dict):
        raise ValueError(f"[{where}] must be a table, got {type(data).__name__}")
    known = {f.name: f for f in fields(cls)}
    unknown = sorted(set(data) - set(known) - ({"enroll"} if cls is RemoteAPI else set()))
    if unknown:
        raise ValueError(f"unknown key {where}.{unknown[0]}; allowed: {', '.join(known)}")
    if "url" not in data:
        raise ValueError(f"missing key {where}.url")
    for key, value in data.items():
        if key == "enroll":
            continue
        want = float if key in ("threshold", "similarity_max") else str
        if isinstance(value, bool) or not isinstance(value, (int, float) if want is float
                                                     else str):
            raise ValueError(f"{where}.{key} must be a {want.__name__}, got {value!r}")
    return {k: float(v) if isinstance(v, int) else v for k, v in data.items()}


def parse_remote(data: Any, where: str = "remote") -> RemoteAPI:
    """Validate a ``[remote]`` table (errors name ``where.key``)."""
    values = _table(RemoteAPI, data, where)
    enroll = None
    if "enroll" in values:
        enroll = EnrollAPI(**_table(EnrollAPI, values.pop("enroll"), f"{where}.enroll"))
    api = RemoteAPI(**values, enroll=enroll)
    for key, url in (("url", api.url), ("health_url", api.health_url),
                     ("enroll.url", enroll.url if enroll else "")):
        if url and not url.startswith(("http://", "https://")):
            raise ValueError(f"{where}.{key} must start with http:// or https://, got {url!r}")
    checks = (("method", api.method, METHODS), ("body", api.body, BODIES),
              ("score_kind", api.score_kind, SCORE_KINDS))
    for key, value, allowed in checks:
        if value not in allowed:
            raise ValueError(f"{where}.{key} must be one of {', '.join(allowed)}, got {value!r}")
    if not api.decision and not (api.score and (api.threshold or api.threshold_path)):
        raise ValueError(f"{where}: set decision (the JSON path of the decision) or score with "
                         "threshold, so an answer can be read as accept or reject")
    if not api.reference_field and not (api.identity_field and enroll):
        raise ValueError(f"{where}: set reference_field (a two-image API) or identity_field "
                         f"with [{where}.enroll] (an API that enrolls identities)")
    if api.threshold_path and not api.health_url:
        raise ValueError(f"{where}.threshold_path needs {where}.health_url")
    return api


def load_remote(path: str | Path) -> RemoteAPI:
    """Read the ``[remote]`` table of a TOML file (``ValueError`` naming the file and key)."""
    path = Path(path)
    doc = read_toml(path, "remote description")
    if set(doc) != {"remote"}:
        raise ValueError(f"{path}: expected exactly one table [remote], got "
                         f"{', '.join(f'[{k}]' for k in doc) or 'none'}")
    try:
        return parse_remote(doc["remote"])
    except ValueError as err:
        raise ValueError(f"{path}: {err}") from None


def json_path(doc: Any, path: str) -> Any:
    """``doc`` at the dotted ``path`` (list indices as numbers); ``KeyError`` naming it."""
    value = doc
    for part in path.split("."):
        if isinstance(value, list) and part.lstrip("-").isdigit():
            value = value[int(part)] if -len(value) <= int(part) < len(value) else None
        elif isinstance(value, dict):
            value = value.get(part)
        else:
            value = None
        if value is None:
            raise KeyError(f"the response has no {path!r}")
    return value


def _secret(value: str, env: str, where: str) -> str:
    if env:
        found = os.environ.get(env, "")
        if not found:
            raise ValueError(f"{where}.auth_env: ${env} is not set")
        return found
    return value


class RemoteClient(GateClient):
    """A :class:`GateClient` speaking to the API a :class:`RemoteAPI` describes (429s waited
    out and 403 lock-outs raised as for the native client)."""

    def __init__(self, api: RemoteAPI, *, wait: bool = True, max_wait_s: float = 600.0,
                 timeout: float = 60.0) -> None:
        super().__init__(api.url, "", wait=wait, max_wait_s=max_wait_s, timeout=timeout)
        self.api = api
        self.http.headers.pop("Authorization", None)
        value = _secret(api.auth_value, api.auth_env, "remote")
        if value:
            self.http.headers[api.auth_header] = value
        self.references: dict[str, bytes] = {}
        self.info: dict[str, Any] | None = None

    def health(self) -> dict[str, Any]:
        """``{"remote": url}`` plus the distance ``threshold`` when scores can be read (asked
        once)."""
        if self.info is None:
            self.info = self._health()
        return dict(self.info)

    def _health(self) -> dict[str, Any]:
        info: dict[str, Any] = {"remote": self.api.url}
        threshold = self.api.threshold
        if self.api.health_url:
            r = self.http.get(self.api.health_url)
            if r.status_code != 200:
                raise OSError(f"{self.api.health_url} answered {r.status_code}")
            if self.api.threshold_path:
                threshold = float(json_path(r.json(), self.api.threshold_path))
        if self.api.score and threshold:
            info["threshold"] = self.api.to_distance(threshold)
        return info

    def _request(self, photo: bytes, claimed: str, content_type: str) -> dict[str, Any]:
        api = self.api
        images = {api.probe_field: photo}
        if api.reference_field:
            if claimed not in self.references:
                raise ValueError(f"no reference photo for {claimed!r}: enroll it first")
            images[api.reference_field] = self.references[claimed]
        data = {api.identity_field: claimed} if api.identity_field else {}
        if api.body == "json":
            encoded = {k: base64.b64encode(v).decode("ascii") for k, v in images.items()}
            return {"json": {**data, **encoded}}
        files = {k: (f"{k}.img", v, content_type) for k, v in images.items()}
        return {"data": data, "files": files}

    def verify(self, photo: bytes, claimed: str, content_type: str = "image/png") -> Answer:
        r = self._post(self.api.url, method=self.api.method,
                       **self._request(photo, claimed, content_type))
        if r.status_code == 403:
            raise GateLockedOut(f"{self.api.url}: 403 {r.text[:200]}")
        if r.status_code in (401, 404, 405, 411):
            raise OSError(f"{self.api.url} refused the request: {r.status_code} "
                          f"{r.text[:200]}")
        if r.status_code != 200:
            return Answer(False, None, r.status_code, r.text[:200])
        return self._answer(r.json())

    def _answer(self, body: Any) -> Answer:
        api = self.api
        try:
            score = (api.to_distance(float(json_path(body, api.score))) if api.score
                     else None)
            if api.decision:
                value = json_path(body, api.decision)
                accepted = value if isinstance(value, bool) else str(value) == api.accept_value
            else:
                accepted = accepts(float(score if score is not None else 0.0),
                                   float(self.health()["threshold"]))
        except (KeyError, TypeError, ValueError) as err:
            raise OSError(f"{api.url}: cannot read the answer {str(body)[:200]!r} ({err})"
                          ) from None
        return Answer(bool(accepted), score, 200)

    def enroll(self, identity: str, photos: list[bytes], admin_key: str,
               mode: str = "append") -> dict[str, Any]:
        """Two-image APIs keep the first photo as the identity's reference; others call
        ``[remote.enroll]`` (``mode`` is facerobust's own gate's; ignored here)."""
        enroll = self.api.enroll
        if enroll is None:
            self.references[identity] = photos[0]
            return {"identity": identity, "photos": 1, "kept": "locally"}
        auth = _secret(enroll.auth_value, enroll.auth_env, "remote.enroll")
        headers = {self.api.auth_header: auth} if auth else {}
        files = [(enroll.photo_field, (f"p{i}.jpg", p, "image/jpeg"))
                 for i, p in enumerate(photos)]
        form = {enroll.identity_field: identity}
        if enroll.mode_field:
            form[enroll.mode_field] = enroll.mode_value
        r = self.http.post(enroll.url, data=form, files=files,
                           headers=headers)
        if r.status_code == 422:
            raise ValueError(f"enrolling {identity!r}: {r.text[:200]}")
        if r.status_code != 200:
            raise OSError(f"enrolling {identity!r} failed: {r.status_code} {r.text[:200]}")
        return dict(r.json())
