"""``facerobust data``: dataset utilities (``fetch lfw``, ``prepare DIR``)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from facerobust.data.chips import DETECTORS
from facerobust.data.fetch import fetch_lfw
from facerobust.data.prepare import prepare_dataset


def configure(parser: argparse.ArgumentParser) -> None:

    sub = parser.add_subparsers(dest="data_command", metavar="ACTION")
    fetch = sub.add_parser("fetch", help="download a public dataset into the cache",
                           description="Download a public dataset, verify its sha256 "
                           "checksums and extract it atomically.")
    fetch.add_argument("dataset", choices=["lfw"], help="dataset to download")
    fetch.add_argument("--dest", type=Path, default=None,
                       help="target folder (default: $FACEROBUST_CACHE/datasets/lfw)")
    fetch.add_argument("--base-url", default=None,
                       help="mirror URL serving the files by name (default: scikit-learn's)")
    fetch.add_argument("--no-progress", action="store_true", help="no progress bar")
    prep = sub.add_parser("prepare", help="detect, align and cache every image under a folder",
                          description="Walk DIR recursively, detect and align the face of "
                          "every image file into the chip cache (resumable), and print "
                          "counts, throughput and the skipped files.")
    prep.add_argument("dir", type=Path, metavar="DIR", help="folder of images (recursive)")
    prep.add_argument("--workers", type=int, default=1, metavar="N",
                      help="worker processes of the local executor, >= 1 (default: 1)")
    prep.add_argument("--executor", choices=("local", "ray"), default="local",
                      help="where images are aligned: local processes (the default) or Ray "
                           "tasks on every CPU of a cluster (needs facerobust[scale])")
    prep.add_argument("--address", default=None, metavar="ADDR",
                      help="Ray cluster to join with --executor ray (e.g. ray://head:10001); "
                           "default: start a local cluster")
    prep.add_argument("--detector", default="hog+cnn", choices=DETECTORS,
                      help="face detector (default: HOG, CNN when HOG finds none)")
    prep.add_argument("--no-progress", action="store_true", help="no progress bar")


def run(args: argparse.Namespace) -> int:
    command = getattr(args, "data_command", None)
    if command == "prepare":

        try:
            report = prepare_dataset(args.dir, workers=args.workers, detector=args.detector,
                                     progress=not args.no_progress, executor=args.executor,
                                     address=args.address)
        except RuntimeError as err:
            print(f"facerobust data prepare: {err}", file=sys.stderr)
            return 1
        print("\n".join(report.lines()))
        return 0
    if command != "fetch":
        print("usage: facerobust data fetch lfw [--dest DIR] | facerobust data prepare DIR "
              "[--workers N | --executor ray [--address ADDR]] [--detector MODE]",
              file=sys.stderr)
        return 2

    root = fetch_lfw(args.dest, base_url=args.base_url, progress=not args.no_progress)
    print(f"LFW ready at {root}")
    return 0
