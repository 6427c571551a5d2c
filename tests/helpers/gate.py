"""Start the real gate (``facerobust serve``) on 127.0.0.1 in a subprocess for tests."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import torch

ROOT = Path(__file__).resolve().parents[2]
ADMIN = "test-admin-key-0123456789"
STAND_IN = "tests.helpers.models:PooledPixels"
DEMO = ROOT / "src/facerobust/data/demo/lfw-demo/images"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def write_config(path: Path, db_url: str, *, gate: str = "", limits: str = "") -> Path:
    path.write_text(f'[gate]\nmodel = "{STAND_IN}"\nthreshold = 0.5\nexpose_scores = true\n'
                    f'database = "{db_url}"\n{gate}\n[limits]\n{limits}\n')
    return path


class Server:
    def __init__(self, proc: subprocess.Popen[bytes], url: str) -> None:
        self.proc, self.url = proc, url

    def kill9(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=10)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)


def start(config: Path, *, timeout: float = 60.0, admin: str = ADMIN,
          stderr: Path | None = None) -> Server:
    """Start ``facerobust serve`` and wait (bounded) until /healthz answers 200 (``admin``
    "" = no admin key in the environment; ``stderr`` = a file for the server's stderr)."""
    port = free_port()
    env = {**os.environ, "PYTHONPATH": f"{ROOT / 'src'}{os.pathsep}{ROOT}",
           "FACEROBUST_GATE_ADMIN_KEY": admin}
    err = None if stderr is None else stderr.open("wb")
    proc = subprocess.Popen([sys.executable, "-m", "facerobust.cli", "serve", "--config",
                             str(config), "--host", "127.0.0.1", "--port", str(port)],
                            env=env, cwd=ROOT, stderr=err)
    if err is not None:
        err.close()
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"gate exited with code {proc.returncode} before answering")
        try:
            if httpx.get(f"{url}/healthz", timeout=1.0).status_code == 200:
                return Server(proc, url)
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    proc.kill()
    raise RuntimeError(f"gate did not answer /healthz within {timeout} s")


@contextmanager
def running(config: Path) -> Iterator[Server]:
    server = start(config)
    try:
        yield server
    finally:
        server.stop()


def demo_photo(name: str, index: int = 1) -> bytes:
    """The ``index``-th (1-based, sorted) demo photo of ``name``."""
    return sorted((DEMO / name).glob("*.jpg"))[index - 1].read_bytes()


def auth(key: str = ADMIN) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def bright_detector() -> object:
    """A stand-in adversarial-input detector for the gate: flags chips brighter than 0.5."""
    def score(chips: torch.Tensor) -> dict[str, float | bool]:
        mean = float(chips.mean())
        return {"mean": mean, "reject": mean > 0.5}

    return score
