"""``facerobust detect``: adversarial-input detectors.

Study mode fits, calibrates and attacks detectors on the victim's identification task (a
one-unit audit: ``results.json`` + ``report.html`` in ``--out``); ``--save DIR`` also copies
the fitted detectors there. Score mode (``--load FILE``) scores photos (or aligned chips) with
a saved detector and flags those above its threshold.

Examples::

    facerobust detect --detector trajectory --detector squeeze --detector ocsvm \\
        --detector iforest --n 120 --out runs/detect --save detectors/
    facerobust detect --load detectors/detector-1-squeeze.pt photo1.jpg photo2.png
    facerobust detect --dataset lfw-color --fit-dataset cfp --fit-identities 200 \\
        --identities 100 --images-per-identity 6 --gallery-per-identity 3 --min-images 6 \\
        --detector trajectory --nearest 16 --n 900 --out runs/detect-paper
"""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

from facerobust.attacks import parse_epsilons
from facerobust.cli.audit import print_outcome
from facerobust.cli.common import add_run_arguments, command_run
from facerobust.data.resolve import default_dataset
from facerobust.detectors.photos import score_images
from facerobust.detectors.registry import DETECTORS
from facerobust.eval.commands import DetectCommand, run_detect
from facerobust.eval.detector_config import TRAJECTORY_VARIANTS


def configure(parser: argparse.ArgumentParser) -> None:

    parser.add_argument("images", nargs="*", type=Path,
                        help="score mode (--load): photos or chips to score")
    parser.add_argument("--model", default="dlib-resnet",
                        help="zoo model name, model spec (*.toml) or added model")
    parser.add_argument("--detector", action="append", choices=DETECTORS, default=None,
                        help="study mode: a detector to fit and judge (repeat for several)")
    parser.add_argument("--variant", action="append", choices=TRAJECTORY_VARIANTS,
                        default=None, help="trajectory variants (default: all four)")
    parser.add_argument("--dataset", default=default_dataset(),
                        help="dataset name (default: lfw when an LFW copy is found, else the "
                             "embedded lfw-demo)")
    parser.add_argument("--data", type=Path, default=None,
                        help="dataset folder (default: looked up under $FACEROBUST_DATA)")
    parser.add_argument("--identities", type=int, default=40, help="enrolled identities")
    parser.add_argument("--images-per-identity", type=int, default=20,
                        help="photos used per person, gallery and probes (default 20)")
    parser.add_argument("--gallery-per-identity", type=int, default=10,
                        help="photos enrolled per person (default 10)")
    parser.add_argument("--min-images", type=int, default=15,
                        help="people with fewer photos are left out (default 15)")
    parser.add_argument("--fit-dataset", default="",
                        help="fit the detectors on this dataset's people (e.g. cfp) and judge "
                             "them on --dataset's: no person on both sides")
    parser.add_argument("--fit-identities", type=int, default=0,
                        help="people of --fit-dataset the detectors are fitted on")
    parser.add_argument("--nearest", type=int, default=0,
                        help="trajectory: read the K nearest identities, sorted (identity-"
                             "agnostic); default 0: one input per enrolled person (the paper)")
    parser.add_argument("--n", type=int, default=120, help="probes attacked for the study")
    parser.add_argument("--fpr", type=float, default=0.05,
                        help="operating false-positive rate on clean probes")
    parser.add_argument("--adaptive-eps", default="2/255,4/255,8/255",
                        help="budgets of the naive and adaptive PGD attacks")
    parser.add_argument("--adaptive-n", type=int, default=24, help="probes attacked adaptively")
    parser.add_argument("--save", type=Path, default=None, metavar="DIR",
                        help="study mode: copy the fitted detectors into DIR")
    parser.add_argument("--load", type=Path, default=None, metavar="FILE",
                        help="score mode: a detector saved by a study")
    parser.add_argument("--chips", action="store_true",
                        help="score mode: the images are aligned 150x150 chips already")
    add_run_arguments(parser)


def run(args: argparse.Namespace) -> int:
    if args.load is not None:
        return _score(args)
    if not args.detector:
        raise ValueError("name at least one --detector to study, or --load a saved one")
    if args.images:
        raise ValueError("images are scored only with --load FILE")
    return _study(args)


def _study(args: argparse.Namespace) -> int:

    if args.save is not None and args.save.exists() and any(args.save.iterdir()):
        raise ValueError(f"--save {args.save}: folder exists and is not empty; nothing there "
                         "is overwritten, choose a new folder")
    command = DetectCommand(
        detectors=tuple(dict.fromkeys(args.detector)), n=args.n, identities=args.identities,
        variants=tuple(args.variant or ()), fpr=args.fpr,
        adaptive_epsilons=tuple(parse_epsilons(args.adaptive_eps)),
        adaptive_samples=args.adaptive_n, images_per_identity=args.images_per_identity,
        gallery_per_identity=args.gallery_per_identity, min_images=args.min_images,
        fit_dataset=args.fit_dataset, fit_identities=args.fit_identities, nearest=args.nearest)
    path = run_detect(command, command_run(args))
    print_outcome(path)
    if args.save is not None:

        args.save.mkdir(parents=True, exist_ok=True)
        for file in sorted((path.parent / "detectors").glob("*.pt")):
            shutil.copy2(file, args.save / file.name)
            print(f"saved {args.save / file.name}")
    return 0


def _score(args: argparse.Namespace) -> int:

    if not args.images:
        raise ValueError("--load needs image files to score")
    rows = score_images(args.load, args.images, model_name=args.model, chips=args.chips)
    for row in rows:
        if row.get("error"):
            print(f"{row['path']}: skipped: {row['error']}")
        else:
            verdict = "ADVERSARIAL" if row["flagged"] else "clean"
            print(f"{row['path']}: score {row['score']:.4f} (threshold "
                  f"{row['threshold']:.4f}) -> {verdict}")
    if args.out is not None:
        args.out.mkdir(parents=True, exist_ok=True)
        target = args.out / "detections.json"
        target.write_text(json.dumps(rows, indent=1), encoding="utf-8")
        print(f"wrote {target}")
    return 0
