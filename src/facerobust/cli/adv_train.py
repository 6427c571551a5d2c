"""``facerobust adv-train``: PGD adversarial fine-tuning on the identities of any dataset
layout, judged on identities NOT used for training (clean accuracy cost and robustness
gain). Writes ``--out DIR/results.json`` (kind ``adv-train``), ``DIR/model.pt`` (the tuned
weights) and ``DIR/report.html``."""

from __future__ import annotations

import argparse

import torch

from facerobust.attacks import parse_epsilons
from facerobust.cli.common import add_data_arguments, add_out_argument, data_source, run_output
from facerobust.defenses.augment import AugmentSpec
from facerobust.defenses.training import FinetuneOptions
from facerobust.eval.identification import TrainingGroups, adversarial_training_study
from facerobust.eval.results_study import AdvTrainResult, JudgedHardening
from facerobust.eval.study_run import run_study, source_identity
from facerobust.report import render_report

WEIGHTS = "model.pt"


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", default="dlib-resnet", help="model to fine-tune")
    add_data_arguments(parser)
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
    parser.add_argument("--augment", default="", metavar="SPEC",
                        help="augmentation, e.g. 'rotation=10,zoom=0.1,flip=1,brightness=0.2,"
                             "contrast=0.2,fraction=0.5' (seeded; default rotation 10, zoom "
                             "0.1, flip); noise=0.25 adds Gaussian noise (training for "
                             "randomized smoothing, see `facerobust certify`)")
    parser.add_argument("--adv-fraction", type=float, default=1.0,
                        help="share of each batch also trained on as PGD adversarials "
                             "(0 = augmentation only; default 1)")
    parser.add_argument("--loss", choices=["hinge", "trades"], default="hinge",
                        help="hinge: losses around the threshold on clean and adversarial "
                             "pairs; trades: keep clean descriptors at the original's and pull "
                             "adversarial ones to the clean ones (docs/studies.md)")
    parser.add_argument("--keep", type=float, default=1.0,
                        help="weight of the term keeping clean descriptors at the original's")
    parser.add_argument("--beta", type=float, default=6.0,
                        help="trades: weight of the adversarial-to-clean term (default 6)")
    parser.add_argument("--trades-target", choices=["clean", "teacher"], default="clean",
                        help="trades: pull adversarial descriptors to the tuned model's clean "
                             "ones (clean) or the original's (teacher)")
    parser.add_argument("--photos-per-person", type=int, default=1, metavar="K",
                        help="order batches in runs of K photos of one person, so rows have a "
                             "genuine partner (default 1: plain shuffle)")
    parser.add_argument("--genuine", type=float, default=0.0,
                        help="trades: weight of a hinge pulling each adversarial descriptor "
                             "within the threshold of its genuine partner (needs "
                             "--photos-per-person >= 2 to find partners; default 0)")
    parser.add_argument("--impostor", type=float, default=0.0,
                        help="trades: weight of a hinge keeping clean descriptors of different "
                             "people beyond the threshold (default 0)")
    parser.add_argument("--schedule", choices=["constant", "cosine"], default="constant",
                        help="learning-rate schedule (cosine: decay to 0 over the run)")
    parser.add_argument("--bf16-attack", action="store_true",
                        help="craft the training adversarials under a bfloat16 autocast")
    parser.add_argument("--checkpoint", default=None, metavar="FILE",
                        help="save the run here every few minutes and resume from it")
    parser.add_argument("--validation-identities", type=int, default=0,
                        help="a third disjoint group scored every epoch; the best epoch is "
                             "kept (default 0: keep the last)")
    parser.add_argument("--judge", action="store_true",
                        help="judge before/after on (a) clean, (b) the trained attack, (c) CW, "
                             "a larger budget and adaptive PGD, (d) augmented images")
    parser.add_argument("--max-seconds", type=float, default=600.0,
                        help="stop training after this many seconds (default 600)")
    parser.add_argument("--seed", type=int, default=0)
    add_out_argument(parser)


def run(args: argparse.Namespace) -> int:

    (eps,) = parse_epsilons(args.eps)
    if args.train_identities < 2 or args.holdout_identities < 2 or args.images < 2:
        raise ValueError("--train-identities, --holdout-identities and --images must be >= 2")
    layers: str | int = int(args.layers) if args.layers.isdigit() else args.layers
    if layers not in ("last", "all") and not isinstance(layers, int):
        raise ValueError(f"--layers must be 'last', 'all' or a number, got {args.layers!r}")

    if args.no_augment and args.augment:
        raise ValueError("give --augment or --no-augment, not both")
    augment = False if args.no_augment else (AugmentSpec.parse(args.augment) if args.augment
                                             else True)
    if not 0 <= args.adv_fraction <= 1:
        raise ValueError(f"--adv-fraction must be in [0, 1], got {args.adv_fraction}")
    if args.validation_identities == 1 or args.validation_identities < 0:
        raise ValueError("--validation-identities must be 0 or >= 2")

    groups = TrainingGroups(args.train_identities, args.holdout_identities, args.images,
                            args.validation_identities)
    training = FinetuneOptions(epochs=args.epochs, eps=eps, steps=args.steps,
                               layers=layers,  # type: ignore[arg-type]  # checked above
                               augment=augment, goal=args.goal, lr=args.lr,
                               adv_fraction=args.adv_fraction, max_seconds=args.max_seconds,
                               seed=args.seed, progress=True, loss=args.loss, keep=args.keep,
                               beta=args.beta, trades_target=args.trades_target,
                               schedule=args.schedule, bf16_attack=args.bf16_attack,
                               checkpoint=args.checkpoint,
                               photos_per_person=args.photos_per_person, genuine=args.genuine,
                               impostor=args.impostor)
    out = run_output(args.out, force=args.force)
    source = data_source(args)
    settings = {"model": args.model, "data": source_identity(source), "groups": groups,
                "training": training, "judge": args.judge}

    def compute() -> AdvTrainResult:
        _, result, tuned = adversarial_training_study(
            model=args.model, source=source, groups=groups, training=training,
            judge=args.judge)
        torch.save(tuned.state_dict(), out.file(WEIGHTS))
        return result

    result = run_study(out, AdvTrainResult, settings, compute, force=args.force,
                       files=(out.file(WEIGHTS),)).result
    figures = result.training
    print(f"clean accuracy cost {figures.get('clean_accuracy_cost')}, robustness gain "
          f"{figures.get('robustness_gain')} (held-out identities); wrote {out.results} and "
          f"{out.file(WEIGHTS)}")
    if figures.get("best_epoch") is not None:
        print(f"kept epoch {figures['best_epoch']} by validation (-1 = the original weights)")
    if result.judged is not None:
        print_judged(result.judged)
    print(f"report: {render_report(out.results)}")
    return 0


def print_judged(judged: JudgedHardening) -> None:
    for key, row in judged.conditions.items():
        print(f"{key:<20} before {row.before.text():<40} after {row.after.text()}\n"
              f"{'':<20} ({row.condition})")
