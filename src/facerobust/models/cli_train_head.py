"""``facerobust train-head``: train a closed-set identification head on a zoo embedder.

    facerobust train-head --model mobileface --dataset lfw-gray --min-images 10 \
        --per-identity 5 --out head.pt
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", required=True, help="registered face model name")
    parser.add_argument("--dataset", default="lfw-gray", help="dataset name (lfw -> lfw-gray)")
    parser.add_argument("--data", default=None, help="dataset folder (or a folder holding it)")
    parser.add_argument("--min-images", type=int, default=10)
    parser.add_argument("--per-identity", type=int, default=None,
                        help="train images per identity (default min(20, min-images // 2))")
    parser.add_argument("--identities", type=int, default=100, help="at most this many people")
    parser.add_argument("--max-probes", type=int, default=10, help="held-out images per person")
    parser.add_argument("--head", choices=["cosine", "linear"], default="cosine")
    parser.add_argument("--epochs", type=int, default=300)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", required=True, help="where to save the head (.pt)")


def _people(root: Path) -> dict[str, list[Path]]:
    from facerobust.data.folders import IdentityFolders

    images = root / "images" if (root / "images").is_dir() else root
    return IdentityFolders(images, min_images=2).identities()


def _embed(model, paths: list[Path]):  # noqa: ANN001, ANN202
    import torch

    from facerobust.eval.clean import embed_paths

    desc, skipped = embed_paths(model, paths, progress=True)
    return {p: torch.nn.functional.normalize(d, dim=0) for p, d in desc.items()}, skipped


def run(args: argparse.Namespace) -> int:
    import torch

    from facerobust import models
    from facerobust.data import resolve_dataset
    from facerobust.models.heads import (
        HeadTraining,
        save_identification,
        split_identities,
        train_head,
    )

    torch.set_num_threads(min(torch.get_num_threads(), 2))
    name = "lfw-gray" if args.dataset == "lfw" else args.dataset
    root = resolve_dataset(name, args.data)
    k = args.per_identity or min(20, max(1, args.min_images // 2))
    names, train, probe = split_identities(
        _people(Path(root)), min_images=args.min_images, per_identity=k,
        max_identities=args.identities, max_probes=args.max_probes, seed=args.seed)
    model = models.load(args.model)
    emb, skipped = _embed(model, [p for p, _ in train + probe])
    train = [(p, y) for p, y in train if p in emb]
    probe = [(p, y) for p, y in probe if p in emb]
    xt = torch.stack([emb[p] for p, _ in train])
    yt = torch.tensor([y for _, y in train])
    head = train_head(xt, yt, n_classes=len(names), kind=args.head, epochs=args.epochs,
                      seed=args.seed)
    with torch.no_grad():
        train_acc = float((head(xt).argmax(1) == yt).float().mean())
        if probe:
            xp = torch.stack([emb[p] for p, _ in probe])
            yp = torch.tensor([y for _, y in probe])
            top1 = float((head(xp).argmax(1) == yp).float().mean())
        else:
            top1 = float("nan")
    report = HeadTraining(kind=args.head, epochs=args.epochs, train_accuracy=train_acc,
                          probe_top1=top1, n_identities=len(names), n_train=len(train),
                          n_probe=len(probe)).to_dict()
    report.update(model=args.model, dataset=str(root), per_identity=k,
                  min_images=args.min_images, skipped_no_face=len(skipped), seed=args.seed)
    split = {"train": [str(p) for p, _ in train], "train_labels": [y for _, y in train],
             "probe": [str(p) for p, _ in probe], "probe_labels": [y for _, y in probe]}
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    save_identification(out, model_name=args.model, kind=args.head, head=head, names=names,
                        split=split, report=report)
    out.with_suffix(".json").write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report, indent=2))
    print(f"saved {out} (held-out top-1 {top1:.4f})", file=sys.stderr)
    return 0
