"""Cost of each input-transformation defense in ms/image on canonical 150x150 chips.

Measures the transform alone (forward, no grad), its BPDA forward+backward (what each adaptive
attack step pays on top of the model), and optionally the full defended model's inference.

    .venv/bin/python benchmarks/defense_cost.py                       # random chips
    .venv/bin/python benchmarks/defense_cost.py --model dlib-resnet   # + model inference
    .venv/bin/python benchmarks/defense_cost.py --json out.json --batch 16 --repeats 5
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from collections.abc import Callable

import torch

DEFAULT_SPECS = ["none", "jpeg:q=75", "bitdepth:bits=4", "median:k=3", "gaussian:sigma=1",
                 "tvm:weight=0.03,keep=0.5,steps=10", "rp:scale=0.1", "jpeg:q=75+median:k=3"]


def _ms(fn: Callable[[], object], n_images: int, repeats: int) -> float:
    fn()  # warm-up
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return 1000 * statistics.median(times) / n_images


def main() -> None:
    from facerobust.defenses import DefendedModel, parse_defense

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--defense", action="append", default=None, metavar="SPEC")
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--model", default=None, help="also time the defended model")
    parser.add_argument("--json", default=None, help="write the rows to this file")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    x = torch.rand((args.batch, 3, 150, 150), generator=torch.Generator().manual_seed(0))
    model = None
    if args.model:
        from facerobust import models

        model = models.load(args.model)
    rows = []
    for spec in args.defense or DEFAULT_SPECS:
        d = parse_defense(spec)

        def transform(d=d) -> object:
            with torch.no_grad():
                return d(x)

        def bpda(d=d) -> object:
            xx = x.clone().requires_grad_(True)
            d.bpda(xx).sum().backward()
            return xx.grad

        row = {"defense": d.spec, "transform_ms": _ms(transform, len(x), args.repeats),
               "bpda_fwd_bwd_ms": _ms(bpda, len(x), args.repeats)}
        if model is not None:
            defended = DefendedModel(model, d)

            def infer(m=defended) -> object:
                with torch.no_grad():
                    return m(x)

            row["defended_inference_ms"] = _ms(infer, len(x), args.repeats)
        rows.append(row)
        print("  ".join(f"{k}={v:.3f}" if isinstance(v, float) else f"{k}={v}"
                        for k, v in row.items()), flush=True)
    if args.json:
        with open(args.json, "w") as fh:
            json.dump({"batch": args.batch, "threads": args.threads, "rows": rows}, fh, indent=2)


if __name__ == "__main__":
    main()
