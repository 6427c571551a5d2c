"""``facerobust compare``: several face models side by side on the same verification pairs
(metric, training-fold threshold, accuracy, genuine/impostor distance statistics, FGSM error
rate per epsilon) of any dataset layout: one table, one ``results.json`` (kind
``comparison``), one figure, one report."""

from __future__ import annotations

import argparse
import sys

from facerobust.attacks import parse_epsilons
from facerobust.cli.common import add_data_arguments, add_out_argument, data_source, run_output
from facerobust.eval.compare import Comparison, compare_models, comparison_figure, format_comparison
from facerobust.eval.study_run import run_study, source_identity
from facerobust.report import render_report

DEFAULT_MODELS = "dlib-resnet,faceres,mobileface"
DEFAULT_EPS = "0.01,0.015,0.02,1/255,2/255,4/255,8/255"


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--models", default=DEFAULT_MODELS,
                        help="comma-separated zoo names, student files, model specs (*.toml) "
                             "or added models "
                             f"(default {DEFAULT_MODELS})")
    add_data_arguments(parser)
    parser.add_argument("--limit-pairs", type=int, default=600, metavar="N",
                        help="pairs spread over folds and classes (default 600; 0 = all)")
    parser.add_argument("--attack-pairs", type=int, default=200, metavar="N",
                        help="pairs attacked with FGSM, spread over folds (default 200)")
    parser.add_argument("--eps", default=DEFAULT_EPS,
                        help=f"FGSM budgets, Linf in [0,1] units (default {DEFAULT_EPS})")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--seed", type=int, default=0)
    add_out_argument(parser)
    parser.add_argument("--no-progress", action="store_true")


def run(args: argparse.Namespace) -> int:

    names = [m.strip() for m in args.models.split(",") if m.strip()]
    if not names or len(set(names)) != len(names):
        raise ValueError(f"--models needs distinct names, got {args.models!r}")
    eps = parse_epsilons(args.eps)
    out = run_output(args.out, force=args.force)
    source = data_source(args)
    settings = {"models": names, "data": source_identity(source),
                "limit_pairs": args.limit_pairs, "attack_pairs": args.attack_pairs,
                "eps": eps, "batch_size": args.batch_size, "seed": args.seed}
    res = run_study(out, Comparison, settings, lambda: compare_models(
        names, source, limit_pairs=args.limit_pairs or None, n_attack=args.attack_pairs,
        epsilons=eps, batch_size=args.batch_size, seed=args.seed,
        progress=not args.no_progress), force=args.force).result
    comparison_figure(res, out.file("comparison.png"))
    html = render_report(out.results)
    print(format_comparison(res))
    print(f"saved {out.results}, {out.file('comparison.png')} and {html}", file=sys.stderr)
    return 0
