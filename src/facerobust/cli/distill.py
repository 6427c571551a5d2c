"""``facerobust distill``: train a small CNN student to reproduce a teacher's descriptors on
identities outside the evaluation pairs (any dataset layout); saved with a model card and
loadable as a zoo model (``models.load(PATH)``).

``--out DIR`` writes ``DIR/<DIR name>.pt`` (the student), ``DIR/results.json`` (its card,
kind ``student-card``) and ``DIR/report.html``. Without ``--out`` (or with the old
``--out FILE.pt``) the student goes to the cache's ``distilled-student.pt`` (what
``models.load("distilled-student")`` reads) or ``FILE.pt``, its card beside it."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from facerobust.cli.common import (
    add_data_arguments,
    add_force_argument,
    data_source,
    run_output,
)
from facerobust.eval.distillation import DistillOptions, distill_study
from facerobust.eval.results_study import StudentCard
from facerobust.eval.study_run import RunOutput, run_study, source_identity
from facerobust.models.student import default_student_path
from facerobust.report import render_report


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--teacher", default="dlib-resnet", help="registered teacher model")
    add_data_arguments(parser)
    parser.add_argument("--out", type=Path, default=None,
                        help="run folder: <name>.pt, results.json (the card), report.html "
                             "(default: the cache's distilled-student.pt; the old form --out "
                             "FILE.pt still works)")
    add_force_argument(parser, "overwrite a finished student in --out")
    parser.add_argument("--eval-pairs", type=int, default=600,
                        help="evaluation pairs (their identities are kept out of training)")
    parser.add_argument("--max-images", type=int, default=10000,
                        help="training images, a seeded draw (default 10000)")
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--widths", default="16,32,64,128",
                        help="channels of each conv block (default 16,32,64,128)")
    parser.add_argument("--input-px", type=int, default=48,
                        help="side the chip is downsampled to (default 48)")
    parser.add_argument("--attack-pairs", type=int, default=100,
                        help="pairs for the FGSM and transfer figures (default 100)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--no-progress", action="store_true")


def run(args: argparse.Namespace) -> int:


    try:
        widths = tuple(int(w) for w in args.widths.split(","))
    except ValueError:
        raise ValueError(f"--widths must be comma-separated integers, got {args.widths!r}"
                         ) from None
    if not widths or min(widths) < 1 or args.epochs < 1 or args.max_images < 10:
        raise ValueError("--widths must be positive, --epochs >= 1, --max-images >= 10")
    if args.eval_pairs < 20 or args.attack_pairs < 1:
        raise ValueError("--eval-pairs must be >= 20 and --attack-pairs >= 1")
    out, weights = student_output(args.out, args.force)
    options = DistillOptions(eval_pairs=args.eval_pairs, max_images=args.max_images,
                             epochs=args.epochs, widths=widths, input_px=args.input_px,
                             n_attack=args.attack_pairs, seed=args.seed)
    source = data_source(args)
    settings = {"teacher": args.teacher, "data": source_identity(source), "options": options,
                "weights": weights.name}
    card = run_study(out, StudentCard, settings, lambda: distill_study(
        args.teacher, source, out=weights, options=options, progress=not args.no_progress,
        card_file=out.results), force=args.force, files=(weights,)).result
    lfw, ms = card.lfw, card.ms_per_image_batch32
    print(f"student {weights}: LFW accuracy {100 * lfw.student_accuracy:.2f}% vs teacher "
          f"{100 * lfw.teacher_accuracy:.2f}% on {lfw.n_pairs} pairs; "
          f"{ms.student:.3f} vs {ms.teacher:.3f} ms/image (x{ms.speedup:.1f})")
    for row in card.transfer_teacher_to_student:
        print(f"transfer PGD eps {255 * row.eps:.0f}/255: teacher {row.teacher.text()}, "
              f"student {row.student.text()}")
    html = render_report(out.results)
    print(json.dumps({"card": str(out.results), "report": str(html)}), file=sys.stderr)
    return 0


def student_output(out: Path | None, force: bool) -> tuple[RunOutput, Path]:
    """The run output (its result file is the card) and the student's weights file: a run
    folder ``DIR`` holds ``DIR/<DIR name>.pt``; ``FILE.pt`` (or none: the default student)
    keeps the card beside the weights as ``FILE.card.json``."""
    weights = out or default_student_path()
    if weights.suffix == ".pt":
        if out is not None:
            print(f"note: --out {out} is the old form; the new one is --out DIR, which writes "
                  "DIR/<DIR name>.pt, DIR/results.json (the card) and DIR/report.html",
                  file=sys.stderr)
        card = weights.with_name(weights.stem + ".card.json")
        taken = [p for p in (weights, card) if p.exists()]
        if taken and not force:
            raise ValueError(f"{taken[0]} exists: pass --force to overwrite it, or choose "
                             "another --out")
        weights.parent.mkdir(parents=True, exist_ok=True)
        return RunOutput(weights.parent, card, legacy=True), weights
    name = weights.resolve().name
    plan = run_output(weights, force=force)
    return plan, plan.file(f"{name}.pt")
