"""Build the embedded demo dataset (``src/facerobust/data/demo/lfw-demo``) from a full LFW copy.

It holds exactly the images the built-in demo config uses: the first ``clean_pairs_per_fold``
matched and mismatched pairs of every fold of LFW's ``pairs.txt`` (as a 10-fold ``pairs.txt``
of its own) and the identification identities the demo draws (all their first
``images_per_identity`` images), so ``facerobust demo`` gives the same figures on it as on the
full copy. Run: ``.venv/bin/python scripts/make_demo_dataset.py /path/to/lfw-gray``.
"""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

DEST = Path(__file__).resolve().parents[1] / "src/facerobust/data/demo/lfw-demo"
README = """# lfw-demo: the embedded demo dataset

A subset of **Labeled Faces in the Wild** (Huang, Ramesh, Berg, Learned-Miller, "Labeled Faces
in the Wild: A Database for Studying Face Recognition in Unconstrained Environments", UMass
Amherst TR 07-49, 2007; http://vis-www.cs.umass.edu/lfw/), taken from the aligned grayscale
copy of LFW. LFW is distributed for research purposes; its images are photographs of public
figures collected from news sites. Cite the paper above when you report figures on it.

Contents ({n_images} images of {n_people} people, {size_mb:.1f} MB):
- `pairs.txt`: the first {per_fold} matched and {per_fold} mismatched pairs of every fold of
  LFW's View 2 `pairs.txt` (header `10 {per_fold}`, LFW's own format and folds);
- `images/<Person>/<Person>_NNNN.jpg`: the images of those pairs, plus the first
  {ident_images} images of the {ident} people the demo's identification split draws.

Made by `scripts/make_demo_dataset.py` so that `facerobust demo` needs no download and gives
the same figures as on the full LFW copy.
"""


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("lfw", type=Path, help="full LFW copy holding pairs.txt and images/")
    parser.add_argument("--dest", type=Path, default=DEST)
    args = parser.parse_args()
    from facerobust.cli.demo import demo_config_text
    from facerobust.data.lfw import LFWPairs
    from facerobust.eval.config import parse_config, tomllib
    from facerobust.eval.tasks import identity_split, pairs_per_fold_limit, select_pairs

    cfg = parse_config(tomllib.loads(demo_config_text()))
    lfw = LFWPairs(args.lfw)
    per_fold = cfg.data.clean_pairs_per_fold
    chosen = select_pairs(lfw.pairs, pairs_per_fold_limit(lfw.pairs, per_fold))
    ident = cfg.identification
    split = identity_split(lfw.people(), identities=ident.identities,
                           images=ident.images_per_identity, gallery=ident.gallery_per_identity,
                           min_images=ident.min_images, seed=cfg.run.seed)
    files = {p for pair in chosen for p in (pair.path_a, pair.path_b)}
    files |= set(split.train_paths) | set(split.probe_paths)
    if args.dest.exists():
        shutil.rmtree(args.dest)
    for src in sorted(files):
        dst = args.dest / src.relative_to(args.lfw)
        dst.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(src, dst)
    lines = [f"10 {per_fold}"]
    for pair in chosen:
        a, b = pair.path_a.stem.rsplit("_", 1), pair.path_b.stem.rsplit("_", 1)
        lines.append(f"{a[0]} {int(a[1])} {int(b[1])}" if pair.same
                     else f"{a[0]} {int(a[1])} {b[0]} {int(b[1])}")
    (args.dest / "pairs.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
    size = sum(f.stat().st_size for f in args.dest.rglob("*") if f.is_file())
    (args.dest / "README.md").write_text(README.format(
        n_images=len(files), n_people=len({f.parent.name for f in files}),
        size_mb=size / 1e6, per_fold=per_fold, ident_images=ident.images_per_identity,
        ident=ident.identities), encoding="utf-8")
    print(f"{len(files)} images, {size / 1e6:.2f} MB -> {args.dest}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
