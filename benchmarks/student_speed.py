"""Speed and LFW accuracy of a student made by ``facerobust distill`` beside its teacher.

ms/image: best of ``--repeats`` no-grad forwards at batch 32, teacher and student in the same
process and thread setting. LFW accuracy: the 10-fold protocol on the student's evaluation
pairs (the ``pairs_requested`` of its card: its training data excludes their identities),
through :func:`facerobust.eval.clean.evaluate_clean`. Without ``--student`` (and no student
at the default location), a small one is distilled first (``--train-images``, ``--epochs``).

    FACEROBUST_DATA=/work/shared/data .venv/bin/python benchmarks/student_speed.py \\
        --student ~/.cache/facerobust/students/dlib-student.pt

The last line is ``RESULT speedup=<teacher ms / student ms> student_lfw=<acc>
teacher_lfw=<acc>``.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

import torch


def _student(args: argparse.Namespace, root: Path, tmp: Path) -> Path:
    from facerobust.eval.distillation import DistillOptions, distill_study
    from facerobust.models.student import default_student_path

    if args.student is not None:
        return Path(args.student)
    if default_student_path().is_file():
        return default_student_path()
    out = tmp / "student.pt"
    print(f"no student given: distilling a small one from {args.teacher} into {out}")
    distill_study(args.teacher, root, out=out,
                  options=DistillOptions(eval_pairs=args.pairs, max_images=args.train_images,
                                         epochs=args.epochs, n_attack=10),
                  progress=False)
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--student", default=None, help="student .pt from facerobust distill")
    parser.add_argument("--teacher", default="dlib-resnet")
    parser.add_argument("--data", type=Path, default=None, help="dataset folder")
    parser.add_argument("--pairs", type=int, default=600,
                        help="evaluation pairs when distilling here (else the card's)")
    parser.add_argument("--train-images", type=int, default=1500)
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    from facerobust import models
    from facerobust.data import resolve_dataset
    from facerobust.eval.clean import CleanOptions, evaluate_clean
    from facerobust.eval.distillation import ms_per_image
    from facerobust.eval.results_study import load_card
    from facerobust.models.student import card_path

    root = resolve_dataset("lfw", args.data)
    with tempfile.TemporaryDirectory() as tmp:
        path = _student(args, root, Path(tmp))
        card = load_card(card_path(path))
        student, teacher = models.load(str(path)), models.load(card.teacher)
        limit = card.lfw.pairs_requested or card.lfw.n_pairs
        ms = {"teacher": ms_per_image(teacher, repeats=args.repeats),
              "student": ms_per_image(student, repeats=args.repeats)}
        acc = {name: evaluate_clean(m, root, CleanOptions(limit_pairs=limit),
                                    progress=False).figures
               for name, m in (("student", student), ("teacher", teacher))}
    result = {"student": str(path), "teacher": card.teacher, "pairs": limit,
              "threads": args.threads, "ms_per_image_batch32": ms,
              "speedup": ms["teacher"] / ms["student"],
              **{f"{k}_lfw": f.accuracy for k, f in acc.items()},
              **{f"{k}_lfw_correct": f.correct.text() for k, f in acc.items()}}
    for key, value in result.items():
        print(f"{key:24s} {value}")
    if args.json is not None:
        args.json.write_text(json.dumps(result, indent=2))
    print(f"RESULT speedup={result['speedup']:.2f} student_lfw={result['student_lfw']:.4f} "
          f"teacher_lfw={result['teacher_lfw']:.4f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
