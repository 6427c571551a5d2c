"""Model passes and wall time per audit unit, counted on the real victim (the sizing input of
docs/scale.md).

Runs one small audit's units (clean, PGD on two goals, the minimal-perturbation search) on the
embedded LFW demo data in this process, with a forward pre-hook on the victim counting images
per call: *gradient* passes (input requires grad: forward + backward) and *forward-only* passes
(scoring, embeddings). Prints one line per unit with the per-sample counts, then::

    RESULT grad_img_s=<fwd+bwd images/s> fwd_img_s=<forward images/s> threads=<n>

forward images/s from the clean unit (every chip embedded), fwd+bwd images/s from the attack
units' wall time less their forward passes at that rate (so it includes the attacks' own
overhead).

    PYTHONPATH=src .venv/bin/python benchmarks/unit_passes.py --threads 1
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path
from typing import Any

import torch

CONFIG = """
[run]
seed = 0
batch_size = 16

[data]
root = "{root}"
clean_pairs_per_fold = 4
attack_pairs = {n}

[models]
victim = "dlib-resnet"

[[attack]]
name = "pgd"
norm = "linf"
epsilons = ["1/255", "2/255", "4/255", "8/255"]
steps = {steps}
goals = ["dodging", "impersonation"]

[minimal]
enabled = true
attack = "pgd"
norm = "linf"
steps = {steps}
goal = "dodging"
samples = {n}
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=8, help="attack samples per unit")
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    from facerobust.cli.demo import embedded_dataset
    from facerobust.eval.audit import plan_units
    from facerobust.eval.config import parse_config, tomllib
    from facerobust.eval.experiment import Experiment
    from facerobust.eval.store import RunStore

    cfg = parse_config(tomllib.loads(CONFIG.format(root=embedded_dataset(), n=args.n,
                                                   steps=args.steps)))
    counts = {"grad": 0, "fwd": 0}

    def count(_: Any, inputs: tuple[torch.Tensor, ...]) -> None:
        x = inputs[0]
        counts["grad" if torch.is_grad_enabled() and x.requires_grad else "fwd"] += len(x)

    with tempfile.TemporaryDirectory(prefix="unit-passes-") as tmp:
        exp = Experiment.prepare(cfg, store=RunStore(Path(tmp)), progress=False)
        exp.models[cfg.models.victim].register_forward_pre_hook(count)
        grad_s = grad_n = fwd_rate = 0.0
        for key, _, fn in plan_units(cfg, exp, Path(tmp)):
            counts.update(grad=0, fwd=0)
            tic = time.perf_counter()
            result = fn()
            wall = time.perf_counter() - tic
            n = len(exp.chips.paths) if key.startswith("clean-") else result.n  # type: ignore
            print(f"{key}: {wall:.1f} s, samples {n}, per sample {counts['grad'] / n:.1f} "
                  f"fwd+bwd + {counts['fwd'] / n:.1f} forward passes", flush=True)
            if key.startswith("clean-"):
                fwd_rate = counts["fwd"] / wall
            elif key.startswith("attack-"):  # wall less its forward passes' share
                grad_s += wall - counts["fwd"] / fwd_rate
                grad_n += counts["grad"]
    print(f"RESULT grad_img_s={grad_n / grad_s:.1f} fwd_img_s={fwd_rate:.1f} "
          f"threads={args.threads}")


if __name__ == "__main__":
    main()
