"""Speed and colour-LFW accuracy of a distilled student beside its teacher, dlib-resnet.

By default the shipped zoo model ``dlib-student`` (``facerobust models build dlib-student``
rebuilds it); ``--student`` takes another zoo name or a ``.pt`` file (a build, or a student
of ``facerobust distill``). ms/image: no-grad forwards at batch 32 on one thread, teacher and
student interleaved over ``--rounds``, medians
(:func:`facerobust.eval.student_build.speed`). Accuracy: 10-fold on colour LFW's View 2
pairs, people the shipped student never trained on, with the student's probes against a
dlib-enrolled gallery at dlib's threshold beside it
(:func:`facerobust.eval.student_build.judge_student`).

    FACEROBUST_DATA=/work/shared/data .venv/bin/python benchmarks/student_speed.py

The last line is ``RESULT speedup=<teacher ms / student ms> student_lfw=<acc>
teacher_lfw=<acc>``.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--student", default="dlib-student", help="zoo name or .pt file")
    parser.add_argument("--data", type=Path, default=None,
                        help="folder holding lfw-color/ (default: $FACEROBUST_DATA)")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()

    from facerobust import models
    from facerobust.eval.student_build import judge_student, speed

    torch.set_num_threads(2)
    student, teacher = models.load(args.student), models.load("dlib-resnet")
    ms = speed(teacher, student, rounds=args.rounds)
    judged = judge_student(teacher, student, args.data)
    result = {"student": args.student, "teacher": "dlib-resnet", **ms, "judged": judged,
              "student_lfw": judged["student"]["accuracy_10fold"],
              "teacher_lfw": judged["teacher"]["accuracy_10fold"]}
    print(json.dumps(result, indent=1))
    if args.json is not None:
        args.json.write_text(json.dumps(result, indent=2))
    print(f"RESULT speedup={ms['speedup']:.2f} student_lfw={result['student_lfw']:.4f} "
          f"teacher_lfw={result['teacher_lfw']:.4f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
