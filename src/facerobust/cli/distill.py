"""``facerobust distill``: train a small CNN student to reproduce a teacher's descriptors on
identities outside the evaluation pairs; saved with a model card and loadable as a zoo model
(``models.load(PATH)``; ``dlib-student`` is the default location)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from facerobust.data import resolve_dataset
from facerobust.eval.distillation import DistillOptions, distill_study
from facerobust.models.student import card_path, default_student_path
from facerobust.report.kinds import render_study


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--teacher", default="dlib-resnet", help="registered teacher model")
    parser.add_argument("--dataset", default="lfw", help="dataset name (default lfw)")
    parser.add_argument("--data", type=Path, default=None, help="dataset folder")
    parser.add_argument("--out", type=Path, default=None,
                        help="student file (.pt; default: the cache's dlib-student.pt)")
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
    out = args.out or default_student_path()
    root = resolve_dataset(args.dataset, args.data)
    options = DistillOptions(eval_pairs=args.eval_pairs, max_images=args.max_images,
                             epochs=args.epochs, widths=widths, input_px=args.input_px,
                             n_attack=args.attack_pairs, seed=args.seed)
    card = distill_study(args.teacher, root, out=out, options=options,
                         progress=not args.no_progress)
    lfw, ms = card.lfw, card.ms_per_image_batch32
    print(f"student {out}: LFW accuracy {100 * lfw.student_accuracy:.2f}% vs teacher "
          f"{100 * lfw.teacher_accuracy:.2f}% on {lfw.n_pairs} pairs; "
          f"{ms.student:.3f} vs {ms.teacher:.3f} ms/image (x{ms.speedup:.1f})")
    for row in card.transfer_teacher_to_student:
        print(f"transfer PGD eps {255 * row.eps:.0f}/255: teacher {row.teacher.text()}, "
              f"student {row.student.text()}")
    html = render_study(card_path(out))
    print(json.dumps({"card": str(card_path(out)), "report": str(html)}), file=sys.stderr)
    return 0
