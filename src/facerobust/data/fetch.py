"""Download public LFW (the archives scikit-learn's ``fetch_lfw_pairs`` uses), verified by sha256.

Result layout (what :class:`facerobust.data.lfw.LFWPairs` reads)::

    <dest>/images/<Person>/<Person>_NNNN.jpg    (deep-funneled colour LFW, 250x250)
    <dest>/pairs.txt  pairsDevTrain.txt  pairsDevTest.txt

Default ``dest`` is ``$FACEROBUST_CACHE/datasets/lfw`` (found by ``resolve_dataset("lfw")``).
Everything is downloaded and extracted into a temporary sibling folder which is renamed into
place only when every checksum matched; on any error nothing half-extracted is left behind.

>>> from facerobust.data.fetch import fetch_lfw
>>> root = fetch_lfw()            # doctest: +SKIP  (about 240 MB)
"""

from __future__ import annotations

import hashlib
import http.client
import shutil
import sys
import tarfile
import tempfile
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from tqdm import tqdm

from facerobust import paths


@dataclass(frozen=True)
class RemoteFile:
    filename: str
    url: str
    sha256: str


# URLs and checksums from scikit-learn (sklearn/datasets/_lfw.py, FUNNELED_ARCHIVE, TARGETS).
LFW_FILES: tuple[RemoteFile, ...] = (
    RemoteFile("lfw-funneled.tgz", "https://ndownloader.figshare.com/files/5976015",
               "b47c8422c8cded889dc5a13418c4bc2abbda121092b3533a83306f90d900100a"),
    RemoteFile("pairsDevTrain.txt", "https://ndownloader.figshare.com/files/5976012",
               "1d454dada7dfeca0e7eab6f65dc4e97a6312d44cf142207be28d688be92aabfa"),
    RemoteFile("pairsDevTest.txt", "https://ndownloader.figshare.com/files/5976009",
               "7cb06600ea8b2814ac26e946201cdb304296262aad67d046a16a7ec85d0ff87c"),
    RemoteFile("pairs.txt", "https://ndownloader.figshare.com/files/5976006",
               "ea42330c62c92989f9d7c03237ed5d591365e89b3e649747777b70e692dc1592"),
)
_ARCHIVE_TOP = "lfw_funneled"


class ChecksumError(ValueError):
    """A downloaded file's sha256 differs from the expected one."""


class DownloadError(ValueError):
    """A download failed (no network, HTTP error, timeout): one line saying what to do."""


def download(url: str, dest: Path, *, sha256: str, progress: bool = True,
             timeout: float = 60.0) -> Path:
    """Stream ``url`` to ``dest`` showing a progress bar; raise ChecksumError on mismatch and
    DownloadError when the transfer fails."""
    try:
        return _download(url, dest, sha256=sha256, progress=progress, timeout=timeout)
    except (OSError, http.client.HTTPException) as err:  # URLError, HTTPError, timeouts
        dest.unlink(missing_ok=True)
        reason = getattr(err, "reason", None) or err
        raise DownloadError(f"could not download {url}: {reason}. Check the network or pass "
                            "--base-url MIRROR; `facerobust demo` needs no download (it ships "
                            "an LFW subset)") from None


def _download(url: str, dest: Path, *, sha256: str, progress: bool, timeout: float) -> Path:

    digest = hashlib.sha256()
    with urllib.request.urlopen(url, timeout=timeout) as resp:  # noqa: S310 (http(s) only)
        total = int(resp.headers.get("Content-Length") or 0) or None
        with open(dest, "wb") as out, tqdm(total=total, unit="B", unit_scale=True,
                                           desc=dest.name, disable=not progress,
                                           file=sys.stderr, leave=False) as bar:
            while chunk := resp.read(1 << 20):
                out.write(chunk)
                digest.update(chunk)
                bar.update(len(chunk))
    got = digest.hexdigest()
    if got != sha256.lower():
        dest.unlink(missing_ok=True)
        raise ChecksumError(f"sha256 mismatch for {dest.name} from {url}: expected {sha256}, "
                            f"got {got}")
    return dest


def _safe_extract(archive: Path, into: Path) -> None:
    with tarfile.open(archive, "r:*") as tar:
        base = into.resolve()
        for member in tar.getmembers():
            target = (into / member.name).resolve()
            if base != target and base not in target.parents:
                raise ValueError(f"{archive.name}: refusing unsafe member path {member.name!r}")
            if member.issym() or member.islnk():
                raise ValueError(f"{archive.name}: refusing link member {member.name!r}")
        if hasattr(tarfile, "data_filter"):
            tar.extractall(into, filter="data")
        else:  # pragma: no cover - Python < 3.11.4
            tar.extractall(into)  # noqa: S202 (members checked above)


def is_complete(dest: Path) -> bool:
    """True when ``dest`` already holds an extracted LFW copy with ``pairs.txt``."""
    return (dest / "pairs.txt").is_file() and (dest / "images").is_dir()


def fetch_lfw(dest: Path | str | None = None, *, base_url: str | None = None,
              files: tuple[RemoteFile, ...] | None = None, progress: bool = True) -> Path:
    """Download, verify and extract LFW into ``dest``; return ``dest`` (no-op if present).

    ``base_url`` replaces each file's URL with ``<base_url>/<filename>`` (a mirror);
    ``files`` (default :data:`LFW_FILES`) lists names, URLs and expected sha256 sums.
    """
    if files is None:
        files = LFW_FILES
    if dest is None:

        dest = paths.cache_subdir("datasets") / "lfw"
    dest = Path(dest).expanduser()
    if is_complete(dest):
        return dest
    if dest.exists() and any(dest.iterdir()):
        raise FileExistsError(f"{dest} exists but is not a complete LFW copy; remove it first")
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=dest.parent, prefix=f".{dest.name}-partial-"))
    try:
        downloads = tmp / "downloads"
        downloads.mkdir()
        staging = tmp / "staging"
        staging.mkdir()
        for item in files:
            url = f"{base_url.rstrip('/')}/{item.filename}" if base_url else item.url
            if progress:
                print(f"downloading {item.filename} from {url}", file=sys.stderr)
            path = download(url, downloads / item.filename, sha256=item.sha256,
                            progress=progress)
            if item.filename.endswith((".tgz", ".tar.gz", ".tar")):
                _safe_extract(path, staging)
                path.unlink()
            else:
                shutil.move(str(path), staging / item.filename)
        top = staging / _ARCHIVE_TOP
        if top.is_dir():
            top.rename(staging / "images")
        if not is_complete(staging):
            raise ValueError(f"downloaded files do not form an LFW copy (need pairs.txt and "
                             f"{_ARCHIVE_TOP}/ in the archive)")
        if dest.exists():
            dest.rmdir()  # empty (checked above)
        staging.rename(dest)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return dest
