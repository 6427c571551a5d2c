"""Forward+backward speed per FLOP of the zoo models beside the dlib port, compiled graphs
beside the op-by-op interpreters they replace.

For ``dlib-resnet`` and the compiled and interpreted ``faceres``, ``mobileface`` and
``mobilefacenet``: ms/image of one forward plus the backward to the input (parameters frozen:
what an attack step costs) at ``--batch`` 32 on canonical chips (random, seeded: speed does not
depend on content), every variant on the same ``--threads``. Rounds are interleaved (each
round times every variant once, after one warm-up each) and medians reported, because the
box is shared. FLOPs per image are counted analytically by forward hooks on every convolution
and linear layer (``2 x`` multiply-adds, as the network computes them: depthwise at its own
cost); forward+backward counts ``2 x`` the forward (the input-gradient pass of a convolution
costs its forward's multiply-adds), so GFLOP/s is that over ms/image. The chip resampling
and pixel scaling inside ``forward`` count as time, not FLOPs. With ``--profile`` the top ops
of one forward+backward per compiled model (torch profiler, self CPU time) show where the time
goes: pointwise and depthwise convolutions and the memory-bound activation passes (measured
figures and the breakdown per model: docs/benchmarks.md, "Model speed").

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/model_speed.py            # quick: 3 rounds
    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/model_speed.py --rounds 5 --profile

The last line is ``RESULT dlib_gflops=<x> faceres_ratio=<x> mobileface_ratio=<x>
mobilefacenet_ratio=<x>`` (ratio = the compiled model's GFLOP/s over dlib's).
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

ZOO = ("faceres", "mobileface", "mobilefacenet")


@dataclass
class Variant:
    """One model to time: ``key`` is ``<model>`` (compiled or dlib) or ``<model>-interp``."""

    key: str
    model: nn.Module
    times: list[float]


def _macs_per_image(model: nn.Module, x: torch.Tensor) -> int:
    """Multiply-adds of one forward per image: conv and linear outputs x their fan-in."""
    total = [0]

    def hook(module: nn.Module, _: object, out: torch.Tensor) -> None:
        if isinstance(module, nn.Conv2d):
            per = module.weight[0].numel()
        elif isinstance(module, nn.Linear):
            per = module.in_features
        else:
            per = int(getattr(module, "macs_per_output", 0))
        total[0] += out.numel() * per

    handles = [m.register_forward_hook(hook) for m in model.modules()
               if isinstance(m, nn.Conv2d | nn.Linear) or hasattr(m, "macs_per_output")]
    try:
        with torch.no_grad():
            model(x)
    finally:
        for h in handles:
            h.remove()
    return total[0] // len(x)


def _step(model: nn.Module, x: torch.Tensor) -> Callable[[], None]:
    def run() -> None:
        xg = x.clone().requires_grad_(True)
        model(xg).pow(2).sum().backward()

    return run


def _variants(args: argparse.Namespace) -> list[Variant]:
    from facerobust import models
    from facerobust.models import zoo

    out = [Variant("dlib", models.load("dlib-resnet"), [])]
    for name in args.models:
        if zoo.graph_path(name) is None:
            print(f"skipping {name}: weights not fetched (facerobust models fetch {name})")
            continue
        out.append(Variant(name, zoo.build(name), []))
        if not args.no_interpreter:
            out.append(Variant(f"{name}-interp", zoo.build(name, compiled=False), []))
    for v in out:
        v.model.eval().requires_grad_(False)
    return out


def _profile(model: nn.Module, x: torch.Tensor, top: int) -> str:
    from torch.profiler import profile

    run = _step(model, x)
    with profile() as prof:
        run()
    rows = sorted(prof.key_averages(), key=lambda e: e.self_cpu_time_total, reverse=True)
    total = sum(e.self_cpu_time_total for e in rows) or 1
    return ", ".join(f"{e.key} {100 * e.self_cpu_time_total / total:.0f}%" for e in rows[:top])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--models", nargs="+", default=list(ZOO), choices=ZOO)
    parser.add_argument("--no-interpreter", action="store_true",
                        help="time only the compiled graphs (no before/after)")
    parser.add_argument("--profile", action="store_true", help="top ops per compiled model")
    parser.add_argument("--json", type=Path, default=None, help="also write results here")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    x = torch.rand(args.batch, 3, 150, 150, generator=torch.Generator().manual_seed(0))
    variants = _variants(args)
    macs = {v.key: _macs_per_image(v.model, x[:2]) for v in variants if "-interp" not in v.key}
    for v in variants:
        _step(v.model, x)()  # warm-up
    for _ in range(args.rounds):
        for v in variants:
            start = time.perf_counter()
            _step(v.model, x)()
            v.times.append((time.perf_counter() - start) * 1000.0 / args.batch)
    ms = {v.key: statistics.median(v.times) for v in variants}
    gflops = {k: 2 * 2 * macs[k.removesuffix("-interp")] / (ms[k] * 1e6) for k in ms}
    print(f"torch {torch.__version__}, {torch.get_num_threads()} thread(s), batch {args.batch}, "
          f"median of {args.rounds} interleaved rounds, forward+backward to the input")
    print(f"{'model':22s} {'GFLOP/img':>9s} {'ms/img':>8s} {'GFLOP/s':>8s} {'vs dlib':>8s}")
    for key in ms:
        flop = 2 * 2 * macs[key.removesuffix("-interp")] / 1e9
        print(f"{key:22s} {flop:9.3f} {ms[key]:8.2f} {gflops[key]:8.2f} "
              f"{gflops[key] / gflops['dlib']:8.2f}")
    for name in (n for n in args.models if f"{n}-interp" in ms):
        print(f"{name}: interpreter {ms[name + '-interp']:.2f} ms/img -> compiled "
              f"{ms[name]:.2f} ms/img ({ms[name + '-interp'] / ms[name]:.1f}x)")
    if args.profile:
        for v in (v for v in variants if "-interp" not in v.key):
            print(f"where the time goes, {v.key}: {_profile(v.model, x, 6)}")
    if args.json is not None:
        args.json.write_text(json.dumps({"ms_per_image": ms, "gflops": gflops, "macs": macs,
                                         "threads": torch.get_num_threads(),
                                         "batch": args.batch, "rounds": args.rounds}, indent=2))
    ratios = " ".join(f"{n}_ratio={gflops[n] / gflops['dlib']:.3f}" if n in gflops
                      else f"{n}_ratio=nan" for n in ZOO)
    print(f"RESULT dlib_gflops={gflops['dlib']:.3f} {ratios}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
