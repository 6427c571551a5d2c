"""Gate load: 16 concurrent clients calling ``POST /verify`` for 60 s against a real gate.

Run: ``.venv/bin/python benchmarks/gate_load.py`` (options: ``--clients 16 --seconds 60
--model dlib-resnet --database sqlite:///...``; ``--database postgresql://...`` to measure the
PostgreSQL store). Starts ``facerobust serve`` on 127.0.0.1 (free port, no rate limits, SQLite
WAL in a temporary folder unless ``--database``), enrolls one identity, then every client posts
a different demo photo (JPEG, ~10-15 KB, 250x250) in a loop until the time is up. The clients
run in this process and share the machine's cores with the gate. Ends with
``RESULT clients=16 seconds=60 requests=.. rps=.. p50_ms=.. p99_ms=.. errors=..``.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.helpers import gate as g  # noqa: E402  (the test suite's server starter)


def client_loop(url: str, photo: bytes, until: float, lat: list[float], errors: list[int]
                ) -> None:
    with httpx.Client(base_url=url, headers=g.auth(), timeout=60) as http:
        while time.monotonic() < until:
            t0 = time.perf_counter()
            try:
                r = http.post("/verify", data={"claimed_identity": "Alejandro_Toledo"},
                              files={"photo": ("p.jpg", photo, "image/jpeg")})
                ok = r.status_code == 200
            except httpx.HTTPError:
                ok = False
            if ok:
                lat.append(time.perf_counter() - t0)
            else:
                errors.append(1)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--clients", type=int, default=16)
    ap.add_argument("--seconds", type=float, default=60.0)
    ap.add_argument("--model", default="dlib-resnet")
    ap.add_argument("--database", default="")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="gate-load-") as tmp_dir:
        run(args, Path(tmp_dir))


def run(args: argparse.Namespace, tmp: Path) -> None:
    db = args.database or f"sqlite:///{tmp / 'gate.db'}"
    cfg = tmp / "gate.toml"
    cfg.write_text(f'[gate]\nmodel = "{args.model}"\ndatabase = "{db}"\n[limits]\n')
    people = sorted(p.name for p in g.DEMO.iterdir() if p.is_dir())[: args.clients]
    photos = [g.demo_photo(name) for name in people]
    with g.running(cfg) as server:
        r = httpx.post(f"{server.url}/enroll", headers=g.auth(),
                       data={"identity": "Alejandro_Toledo"},
                       files=[("photos", ("a.jpg", g.demo_photo("Alejandro_Toledo"),
                                          "image/jpeg"))], timeout=60)
        r.raise_for_status()
        lat: list[float] = []
        errors: list[int] = []
        t0 = time.monotonic()
        until = t0 + args.seconds
        threads = [threading.Thread(target=client_loop,
                                    args=(server.url, photos[i % len(photos)], until, lat,
                                          errors)) for i in range(args.clients)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        wall = time.monotonic() - t0
    ms = sorted(x * 1000 for x in lat)
    p50 = statistics.median(ms) if ms else float("nan")
    p99 = ms[min(len(ms) - 1, int(0.99 * len(ms)))] if ms else float("nan")
    print(f"{args.clients} clients, {wall:.1f} s, model {args.model}, database {db}")
    print(f"  {len(ms)} verified requests, {len(errors)} errors; latency p50 {p50:.0f} ms, "
          f"p99 {p99:.0f} ms; {len(ms) / wall:.1f} requests/s")
    print(f"RESULT clients={args.clients} seconds={wall:.0f} requests={len(ms)} "
          f"rps={len(ms) / wall:.2f} p50_ms={p50:.0f} p99_ms={p99:.0f} errors={len(errors)}")


if __name__ == "__main__":
    main()
