from __future__ import annotations

import functools
import hashlib
import http.server
import io
import tarfile
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from facerobust.data.fetch import ChecksumError, DownloadError, RemoteFile, fetch_lfw
from facerobust.data.lfw import LFWPairs
from facerobust.data.resolve import resolve_dataset

PAIRS = "1 1\nAnn_A 1 2\nAnn_A 1 Bob_B 1\n"


def build_mirror(folder: Path) -> dict[str, str]:
    """A tiny lfw-funneled.tgz + pairs.txt; returns filename -> sha256."""
    folder.mkdir()
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for name in ("lfw_funneled/Ann_A/Ann_A_0001.jpg", "lfw_funneled/Ann_A/Ann_A_0002.jpg",
                     "lfw_funneled/Bob_B/Bob_B_0001.jpg"):
            data = name.encode() * 50
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    (folder / "lfw-funneled.tgz").write_bytes(buf.getvalue())
    (folder / "pairs.txt").write_text(PAIRS)
    return {f.name: hashlib.sha256(f.read_bytes()).hexdigest() for f in folder.iterdir()}


@pytest.fixture()
def server(tmp_path: Path) -> Iterator[tuple[str, dict[str, str]]]:
    sums = build_mirror(tmp_path / "mirror")
    handler = functools.partial(http.server.SimpleHTTPRequestHandler,
                                directory=str(tmp_path / "mirror"))
    handler.log_message = lambda *a, **k: None  # type: ignore[attr-defined]
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}", sums
    finally:
        httpd.shutdown()
        httpd.server_close()


def files(sums: dict[str, str]) -> tuple[RemoteFile, ...]:
    return tuple(RemoteFile(n, f"unused://{n}", sums[n]) for n in ("lfw-funneled.tgz",
                                                                  "pairs.txt"))


def test_fetch_from_local_mirror(server, tmp_path: Path, capsys, monkeypatch) -> None:
    base, sums = server
    dest = tmp_path / "datasets" / "lfw"
    root = fetch_lfw(dest, base_url=base, files=files(sums))
    assert root == dest
    assert (dest / "images/Ann_A/Ann_A_0002.jpg").is_file()
    assert (dest / "pairs.txt").read_text() == PAIRS
    lfw = LFWPairs(dest)
    assert len(lfw) == 2 and lfw.missing() == []
    assert [p.name for p in dest.parent.iterdir()] == ["lfw"]  # no temp leftovers
    assert "downloading lfw-funneled.tgz" in capsys.readouterr().err
    # second call: already complete, no network (a bad URL would fail)
    assert fetch_lfw(dest, base_url="http://127.0.0.1:9", files=files(sums)) == dest
    monkeypatch.setenv("FACEROBUST_CACHE", str(tmp_path))
    monkeypatch.delenv("FACEROBUST_DATA", raising=False)
    assert resolve_dataset("lfw") == dest


def test_checksum_mismatch_leaves_nothing(server, tmp_path: Path) -> None:
    base, sums = server
    bad = dict(sums, **{"pairs.txt": "0" * 64})
    dest = tmp_path / "datasets" / "lfw"
    with pytest.raises(ChecksumError, match="sha256 mismatch for pairs.txt"):
        fetch_lfw(dest, base_url=base, files=files(bad), progress=False)
    assert not dest.exists()
    assert list(dest.parent.iterdir()) == []


def test_http_error_and_partial_dest(server, tmp_path: Path) -> None:
    base, sums = server
    missing = (RemoteFile("nothere.tgz", "x", "0" * 64),)
    with pytest.raises(DownloadError, match=r"could not download .*nothere.tgz: File not found"):
        fetch_lfw(tmp_path / "a" / "lfw", base_url=base, files=missing, progress=False)
    assert list((tmp_path / "a").iterdir()) == []
    junk = tmp_path / "b" / "lfw"
    junk.mkdir(parents=True)
    (junk / "x").write_text("partial")
    with pytest.raises(FileExistsError, match="not a complete LFW copy"):
        fetch_lfw(junk, base_url=base, files=files(sums), progress=False)


def test_cli_fetch(server, tmp_path: Path, capsys, monkeypatch) -> None:
    import facerobust.data.fetch as fetch_mod
    from facerobust.cli import main

    base, sums = server
    monkeypatch.setattr(fetch_mod, "LFW_FILES", files(sums))
    dest = tmp_path / "lfw"
    assert main(["data", "fetch", "lfw", "--dest", str(dest), "--base-url", base,
                 "--no-progress"]) == 0
    assert f"LFW ready at {dest}" in capsys.readouterr().out
    assert LFWPairs(dest).missing() == []


def test_cli_download_failure_is_one_line(tmp_path: Path, capsys) -> None:
    from facerobust.cli import main

    # nothing listens on port 9 of localhost: the connection is refused at once
    code = main(["data", "fetch", "lfw", "--dest", str(tmp_path / "lfw"), "--base-url",
                 "http://127.0.0.1:9", "--no-progress"])
    assert code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "could not download http://127.0.0.1:9/" in err[0]
    assert "Traceback" not in err[0] and "facerobust demo` needs no download" in err[0]
