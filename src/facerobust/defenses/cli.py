"""``facerobust defend``: evaluate input-transformation defenses under naive AND adaptive attacks.

Example::

    facerobust defend --model dlib-resnet --dataset lfw --defense jpeg:q=75 \\
        --defense bitdepth:bits=4 --defense "jpeg:q=75+median:k=3" --attack pgd \\
        --eps 2/255,4/255,8/255 --goal dodging --n 32 --out runs/defend

writes ``runs/defend/defense.json`` (one :class:`DefenseResult` per ``--defense``).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path
from typing import Any

WHITE_BOX = ("pgd", "bim", "fgsm", "mifgsm")


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", default="dlib-resnet", help="registered model name")
    parser.add_argument("--dataset", default="lfw", help="dataset name (LFW with pairs.txt)")
    parser.add_argument("--data", type=Path, default=None,
                        help="dataset folder (default: looked up under $FACEROBUST_DATA)")
    parser.add_argument("--defense", action="append", required=True, metavar="SPEC",
                        help="defense spec 'name:k=v,...' or a composition 'a:...+b:...', "
                             "repeat for several. Defenses: none, jpeg:q=75, bitdepth:bits=4, "
                             "median:k=3, gaussian:sigma=1, tvm:weight=0.03,keep=0.5,steps=10, "
                             "rp:scale=0.1")
    parser.add_argument("--attack", default="pgd", choices=WHITE_BOX,
                        help="white-box attack used for the naive, direct and adaptive runs")
    parser.add_argument("--steps", type=int, default=10, help="iterations (pgd/bim/mifgsm)")
    parser.add_argument("--norm", default="linf", choices=("linf", "l2"))
    parser.add_argument("--eps", default="2/255,4/255,8/255", help="comma-separated budgets")
    parser.add_argument("--goal", default="dodging", choices=("dodging", "impersonation"))
    parser.add_argument("--n", type=int, default=32,
                        help="pairs attacked; clean figures use n matched + n mismatched pairs")
    parser.add_argument("--eot", type=int, default=None,
                        help="EOT samples for the adaptive attack for randomised defenses (default "
                             "8; deterministic defenses always use 1)")
    parser.add_argument("--blackbox", type=int, default=0, metavar="QUERIES",
                        help="also run SquareAttack with this many queries per sample (0 = off)")
    parser.add_argument("--no-direct", action="store_true",
                        help="skip the direct (autograd-through-the-defense) attack")
    parser.add_argument("--far", type=float, default=1e-3, help="FAR for TAR@FAR")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--out", type=Path, required=True, help="output folder")
    parser.add_argument("--no-progress", action="store_true")


def make_attack(name: str, *, steps: int, norm: str) -> Any:
    """The white-box attack for ``--attack``."""
    from facerobust import attacks as A

    if name == "pgd":
        return A.PGD(norm=norm, steps=steps)  # type: ignore[arg-type]
    if name == "bim":
        return A.BIM(norm=norm, steps=steps)  # type: ignore[arg-type]
    if name == "mifgsm":
        return A.MIFGSM(norm=norm, steps=steps)  # type: ignore[arg-type]
    if name == "fgsm":
        return A.FGSM() if norm == "linf" else A.FGM()
    raise ValueError(f"unknown attack {name!r}; choose from {', '.join(WHITE_BOX)}")


def load_pairs(dataset: str, data: Path | None, n: int, *, progress: bool) -> tuple[Any, ...]:
    """``n`` matched and ``n`` mismatched LFW pairs spread over the folds, as chip tensors
    ``(x1, x2, same)``."""
    import torch

    from facerobust.data import resolve_dataset
    from facerobust.data.chips import load_chips
    from facerobust.data.lfw import LFWPairs

    root = resolve_dataset(dataset, data)
    pairs = LFWPairs(root).pairs
    folds = sorted({p.fold for p in pairs})
    per_fold = math.ceil(n / max(1, len(folds)))
    chosen: list[Any] = []
    for same in (True, False):
        picked = []
        for fold in folds:
            picked += [p for p in pairs if p.fold == fold and p.same == same][:per_fold]
        chosen += picked[:n]
    paths = sorted({p.path_a for p in chosen} | {p.path_b for p in chosen})
    chips = load_chips(paths, cache=True, progress=progress)
    kept = [p for p in chosen if p.path_a in chips.index and p.path_b in chips.index]
    if not kept:
        raise ValueError(f"no usable pairs in {root} (no face found in any chosen image)")
    a = torch.tensor([chips.index[p.path_a] for p in kept])
    b = torch.tensor([chips.index[p.path_b] for p in kept])
    same_t = torch.tensor([bool(p.same) for p in kept])
    return chips.chips[a], chips.chips[b], same_t, str(root), len(chosen) - len(kept)


def _row(r: Any) -> str:
    def fmt(table: dict[float, float] | None) -> str:
        return "-" if table is None else " ".join(f"{v:.2f}" for v in table.values())

    flags = [k for k in ("zero_gradients", "random_outputs", "blackbox_beats_whitebox",
                         "success_not_rising") if r.masking.get(k)]
    return (f"{r.name:28s} acc {r.clean_accuracy:.3f} TAR {r.tar_at_far:.3f} "
            f"| undef {fmt(r.undefended)} | naive {fmt(r.naive)} | direct {fmt(r.direct)} "
            f"| adaptive[{r.adaptive_mode}] {fmt(r.adaptive)} | {r.ms_per_image:.2f} ms/img"
            + (f" | MASKING: {','.join(flags)}" if flags else ""))


def run(args: argparse.Namespace) -> int:
    import torch

    from facerobust import models
    from facerobust.attacks import SquareAttack, parse_epsilons
    from facerobust.defenses.evaluate import evaluate_defense
    from facerobust.defenses.spec import parse_defense

    if args.n < 1:
        raise ValueError(f"--n must be >= 1, got {args.n}")
    if args.steps < 1:
        raise ValueError(f"--steps must be >= 1, got {args.steps}")
    if args.eot is not None and args.eot < 1:
        raise ValueError(f"--eot must be >= 1, got {args.eot}")
    defenses = [parse_defense(spec) for spec in args.defense]  # fail fast on bad specs
    epsilons = parse_epsilons(args.eps)
    attack = make_attack(args.attack, steps=args.steps, norm=args.norm)
    blackbox = (SquareAttack(norm=args.norm, max_queries=args.blackbox)
                if args.blackbox else None)
    torch.manual_seed(args.seed)
    model = models.load(args.model, device=args.device)
    progress = not args.no_progress
    x1, x2, same, root, dropped = load_pairs(args.dataset, args.data, args.n, progress=progress)
    x1, x2 = x1.to(args.device), x2.to(args.device)
    args.out.mkdir(parents=True, exist_ok=True)
    results = []
    for defense in defenses:
        result = evaluate_defense(
            model, defense.to(args.device), x1, x2, same.to(args.device), attack=attack,
            epsilons=epsilons, goal=args.goal, eot_samples=args.eot, n_attack=args.n,
            direct=not args.no_direct, blackbox=blackbox, far=args.far,
            batch_size=args.batch_size, seed=args.seed, progress=progress)
        results.append(result)
        print(_row(result), flush=True)
        doc = {
            "command": "defend",
            "config": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()
                       if not k.startswith("_")},
            "dataset_root": root, "dropped_pairs": dropped, "epsilons": epsilons,
            "results": [r.to_dict() for r in results],
        }
        (args.out / "defense.json").write_text(json.dumps(doc, indent=2))
    print(f"wrote {args.out / 'defense.json'}", file=sys.stderr)
    return 0
