"""The same small audit (dlib-resnet, embedded LFW demo data) in one process on 2 torch threads
vs the Ray executor (a local cluster, 2 workers x 1 thread), interleaved over ``--rounds``.

Each run writes a fresh output folder (nothing reused but the aligned-chip cache, warmed by a
first untimed local run). The Ray wall time is end to end, as ``facerobust audit --executor
ray`` sees it: cluster start, shipping the experiment, the units, shutdown. Prints every
round, the medians, and::

    RESULT ray_vs_local=<local median wall / ray median wall> identical=<true|false>

On a 2-core box shared with other jobs, torch's 2 threads in one process can be several times
slower than 1 (threads wait on each other when one is descheduled): ``--local-threads 1``
separates that effect from the parallelism.

``identical`` compares every Ray run's results.json with the local one's, ignoring timings and
the executor echoed in the config.

``--kinds`` adds a defense and three detectors (sharing one adversarial set; the trajectory
detector's two variants are two shards) to the attacks, with identification enabled and shards
of 4 samples: every unit kind Ray shards.

    PYTHONPATH=src .venv/bin/python benchmarks/ray_scale.py --rounds 3
    PYTHONPATH=src .venv/bin/python benchmarks/ray_scale.py --rounds 2 --kinds --local-threads 1
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import torch

from facerobust.eval.results import RUN_SPECIFIC_KEYS, without_keys

CONFIG = """
[run]
seed = 0
batch_size = 8

[data]
root = "{root}"
clean_pairs_per_fold = {pairs}
attack_pairs = {attack_pairs}

[models]
victim = "dlib-resnet"

[[attack]]
name = "pgd"
norm = "linf"
epsilons = ["1/255", "4/255"]
steps = {steps}
goals = ["dodging", "impersonation"]

[[attack]]
name = "pgd"
norm = "l2"
epsilons = ["0.5", "2"]
steps = {steps}
goals = ["dodging", "impersonation"]
"""
KINDS = """
[identification]
enabled = true
identities = 20
images_per_identity = 20
gallery_per_identity = 10
min_images = 20
probes = 8

[[defense]]
spec = "jpeg:q=75"
attack = "pgd"
epsilons = ["4/255"]
steps = {steps}
goal = "impersonation"
eot = 1
samples = 8
""" + "".join("""
[[detector]]
name = "NAME"
attacks = ["bim", "cw"]
samples = 24
steps = {steps}
cw_steps = {steps}
adaptive_samples = 4
adaptive_steps = {steps}
adaptive_epsilons = ["4/255"]
adaptive_weights = [1.0]
""".replace("NAME", name) for name in ("squeeze", "gallery")) + """
[[detector]]
name = "trajectory"
variants = ["M-l2", "C-l2"]
options = {{hidden = 16, epochs = 5}}
attacks = ["bim"]
samples = 24
steps = {steps}
adaptive_samples = 4
adaptive_steps = {steps}
adaptive_epsilons = ["4/255"]
adaptive_weights = [1.0]
"""
VOLATILE = RUN_SPECIFIC_KEYS | {"config_fingerprint", "executor"}



def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--pairs", type=int, default=4, help="clean pairs per fold")
    parser.add_argument("--attack-pairs", type=int, default=8)
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--local-threads", type=int, default=2,
                        help="torch threads of the single-process run (default 2)")
    parser.add_argument("--kinds", action="store_true",
                        help="add a defense and two detectors, shards of 4 samples")
    args = parser.parse_args()

    from facerobust.cli.demo import embedded_dataset
    from facerobust.eval.audit import run_audit
    from facerobust.eval.config import parse_config, tomllib

    text = CONFIG + (KINDS if args.kinds else "")
    if args.kinds:
        text = text.replace("batch_size = 8", "batch_size = 8\nshard_size = 4")
    text = text.format(root=embedded_dataset(), pairs=args.pairs,
                       attack_pairs=args.attack_pairs, steps=args.steps)
    local_cfg = parse_config(tomllib.loads(text))
    ray_cfg = replace(local_cfg, run=replace(local_cfg.run, executor="ray"))
    torch.set_num_threads(args.local_threads)
    walls: dict[str, list[float]] = {"local": [], "ray": []}
    with tempfile.TemporaryDirectory(prefix="ray-scale-") as tmp:
        def audit(cfg: Any, name: str) -> dict[str, Any]:
            tic = time.perf_counter()
            path = run_audit(cfg, Path(tmp) / name, progress=False)
            wall = time.perf_counter() - tic
            print(f"{name}: {wall:.1f} s", flush=True)
            return {"wall": wall, "results": without_keys(json.loads(path.read_text()), VOLATILE)}

        reference = audit(local_cfg, "warm-up-local")["results"]
        identical = True
        for i in range(args.rounds):
            for executor, cfg in (("local", local_cfg), ("ray", ray_cfg)):
                run = audit(cfg, f"{executor}-{i}")
                walls[executor].append(run["wall"])
                identical &= run["results"] == reference
    local, ray = statistics.median(walls["local"]), statistics.median(walls["ray"])
    print(f"median wall over {args.rounds} rounds: local (1 process, {args.local_threads} "
          f"threads) {local:.1f} s "
          f"[{min(walls['local']):.1f}-{max(walls['local']):.1f}], ray (2 workers x 1 thread) "
          f"{ray:.1f} s [{min(walls['ray']):.1f}-{max(walls['ray']):.1f}]")
    print(f"RESULT ray_vs_local={local / ray:.2f} identical={str(identical).lower()}")


if __name__ == "__main__":
    main()
