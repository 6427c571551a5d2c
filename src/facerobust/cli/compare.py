"""``facerobust compare``: several face models side by side on the same verification pairs
(metric, training-fold threshold, accuracy, genuine/impostor distance statistics, FGSM error
rate per epsilon): one table, one JSON, one figure."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from facerobust.attacks import parse_epsilons
from facerobust.data import resolve_dataset
from facerobust.eval.compare import compare_models, comparison_figure, format_comparison
from facerobust.eval.store import write_json_atomic
from facerobust.report.kinds import render_study

DEFAULT_MODELS = "dlib-resnet,faceres,mobileface"
DEFAULT_EPS = "0.01,0.015,0.02,1/255,2/255,4/255,8/255"


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--models", default=DEFAULT_MODELS,
                        help="comma-separated registered names or student files "
                             f"(default {DEFAULT_MODELS})")
    parser.add_argument("--dataset", default="lfw", help="dataset name (default lfw)")
    parser.add_argument("--data", type=Path, default=None, help="dataset folder")
    parser.add_argument("--limit-pairs", type=int, default=600, metavar="N",
                        help="pairs spread over folds and classes (default 600; 0 = all)")
    parser.add_argument("--attack-pairs", type=int, default=200, metavar="N",
                        help="pairs attacked with FGSM, spread over folds (default 200)")
    parser.add_argument("--eps", default=DEFAULT_EPS,
                        help=f"FGSM budgets, Linf in [0,1] units (default {DEFAULT_EPS})")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, required=True,
                        help="output folder: comparison.json, comparison.png, report.html")
    parser.add_argument("--force", action="store_true", help="overwrite an earlier comparison")
    parser.add_argument("--no-progress", action="store_true")


def run(args: argparse.Namespace) -> int:

    names = [m.strip() for m in args.models.split(",") if m.strip()]
    if not names or len(set(names)) != len(names):
        raise ValueError(f"--models needs distinct names, got {args.models!r}")
    eps = parse_epsilons(args.eps)
    if args.out.exists() and not args.out.is_dir():
        raise ValueError(f"--out {args.out} is a file; give a folder")
    target = args.out / "comparison.json"
    if target.exists() and not args.force:
        raise ValueError(f"{target} exists; pass --force to overwrite it")
    root = resolve_dataset(args.dataset, args.data)
    args.out.mkdir(parents=True, exist_ok=True)
    res = compare_models(names, root, limit_pairs=args.limit_pairs or None,
                         n_attack=args.attack_pairs, epsilons=eps, batch_size=args.batch_size,
                         seed=args.seed, progress=not args.no_progress)
    write_json_atomic(target, res.to_dict())
    comparison_figure(res, args.out / "comparison.png")
    html = render_study(target)
    print(format_comparison(res))
    print(f"saved {target}, {args.out / 'comparison.png'} and {html}", file=sys.stderr)
    return 0
