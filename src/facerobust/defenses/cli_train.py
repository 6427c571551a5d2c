"""``facerobust adv-train``: PGD adversarial fine-tuning on LFW identities, judged on
identities NOT used for training (clean accuracy cost and robustness gain)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", default="dlib-resnet", help="model to fine-tune")
    parser.add_argument("--dataset", default="lfw-gray", help="dataset name or folder")
    parser.add_argument("--data", type=Path, default=None, help="dataset folder")
    parser.add_argument("--train-identities", type=int, default=24,
                        help="identities used for training (default 24)")
    parser.add_argument("--holdout-identities", type=int, default=16,
                        help="other identities used only for evaluation (default 16)")
    parser.add_argument("--images", type=int, default=4, help="images per identity (default 4)")
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--eps", default="1/255", help="training and evaluation budget (Linf)")
    parser.add_argument("--steps", type=int, default=3, help="PGD steps of the inner attack")
    parser.add_argument("--layers", default="last", help="'last', 'all' or a number of layers")
    parser.add_argument("--lr", type=float, default=5e-4)
    parser.add_argument("--goal", choices=["dodging", "impersonation"], default="dodging")
    parser.add_argument("--no-augment", action="store_true", help="no flips/rotations/zoom")
    parser.add_argument("--max-seconds", type=float, default=600.0,
                        help="stop training after this many seconds (default 600)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, required=True,
                        help="folder for training.json and the tuned weights (model.pt)")


def run(args: argparse.Namespace) -> int:
    import torch

    from facerobust import models
    from facerobust.attacks import parse_epsilons
    from facerobust.data import resolve_dataset
    from facerobust.data.chips import load_chips
    from facerobust.data.lfw import LFWPairs
    from facerobust.defenses.training import adversarial_finetune

    (eps,) = parse_epsilons(args.eps)
    n_train, n_hold = args.train_identities, args.holdout_identities
    if n_train < 2 or n_hold < 2 or args.images < 2:
        raise ValueError("--train-identities, --holdout-identities and --images must be >= 2")
    layers: str | int = int(args.layers) if args.layers.isdigit() else args.layers
    people = LFWPairs(resolve_dataset(args.dataset, args.data)).people()
    eligible = sorted(n for n, files in people.items() if len(files) >= args.images)
    if len(eligible) < n_train + n_hold:
        raise ValueError(f"only {len(eligible)} identities have >= {args.images} images; "
                         f"asked for {n_train} + {n_hold}")
    order = torch.randperm(len(eligible), generator=torch.Generator().manual_seed(args.seed))
    names = [eligible[i] for i in order[: n_train + n_hold].tolist()]

    def chips_for(chosen: list[str], offset: int) -> tuple[torch.Tensor, torch.Tensor]:
        paths = [p for n in chosen for p in sorted(people[n])[: args.images]]
        chipset = load_chips(paths, progress=True)
        labels = [offset + chosen.index(p.parent.name) for p in chipset.paths]
        return chipset.chips, torch.as_tensor(labels)

    train = chips_for(names[:n_train], 0)
    holdout = chips_for(names[n_train:], n_train)
    tuned, report = adversarial_finetune(
        models.load(args.model), *train, epochs=args.epochs, eps=eps, steps=args.steps,
        layers=layers, augment=not args.no_augment, goal=args.goal, lr=args.lr,
        holdout=holdout, max_seconds=args.max_seconds, seed=args.seed, progress=True)
    args.out.mkdir(parents=True, exist_ok=True)
    result = {"model": args.model, "train_identities": names[:n_train],
              "holdout_identities": names[n_train:], **report.to_dict()}
    (args.out / "training.json").write_text(json.dumps(result, indent=2))
    torch.save(tuned.state_dict(), args.out / "model.pt")
    print(f"clean accuracy cost {report.clean_accuracy_cost}, robustness gain "
          f"{report.robustness_gain} (held-out identities); wrote {args.out / 'training.json'}")
    return 0
