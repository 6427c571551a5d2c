"""``facerobust train-head``: train a closed-set identification head on a zoo embedder, over
the same identification split the audit uses; ``--head PATH`` (attack, defend, audit) and
``[identification] head`` reuse it.

    facerobust train-head --model mobileface --dataset lfw-gray --identities 20 \\
        --images-per-identity 20 --gallery-per-identity 10 --min-images 20 --out head.pt
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from facerobust.cli.common import print_skipped
from facerobust.eval.config import IdentificationConfig
from facerobust.eval.identification import HeadOptions, train_identification_head


def configure(parser: argparse.ArgumentParser) -> None:

    d = IdentificationConfig()
    parser.add_argument("--model", required=True, help="registered face model name")
    parser.add_argument("--dataset", default="lfw-gray", help="dataset name (lfw -> lfw-gray)")
    parser.add_argument("--data", default=None, help="dataset folder (or a folder holding it)")
    parser.add_argument("--identities", type=int, default=d.identities,
                        help="at most this many people (seeded draw)")
    parser.add_argument("--images-per-identity", type=int, default=d.images_per_identity)
    parser.add_argument("--gallery-per-identity", type=int, default=d.gallery_per_identity,
                        help="enrolment images per person; the rest are probes")
    parser.add_argument("--min-images", type=int, default=d.min_images)
    parser.add_argument("--head", choices=["cosine", "linear"], default="cosine")
    parser.add_argument("--epochs", type=int, default=300)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", required=True, help="where to save the head (.pt)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def run(args: argparse.Namespace) -> int:

    out = Path(args.out)
    if out.is_dir():
        raise ValueError(f"--out {out} is a folder; give a file name such as head.pt")
    options = HeadOptions(identities=args.identities, images=args.images_per_identity,
                          gallery=args.gallery_per_identity, min_images=args.min_images,
                          kind=args.head, epochs=args.epochs, seed=args.seed)
    report = train_identification_head(model=args.model, dataset=args.dataset, data=args.data,
                                       options=options, out=out,
                                       progress=not args.no_progress)

    print(json.dumps({k: v for k, v in report.items() if k != "skipped"}, indent=2))
    print_skipped(report["skipped"])
    print(f"saved {out} (held-out top-1 {report['probe_top1']['rate']:.4f})", file=sys.stderr)
    return 0
