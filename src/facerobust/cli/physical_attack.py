"""``facerobust physical-attack``: printable accessories (eyeglass frames, forehead and cheek
stickers, a mouth-and-nose mask) against a face system, judged on held-out simulated captures
by its exact pipeline, beside a random texture of the same shape.

Writes ``--out DIR/results.json`` (kind ``physical``), per attacker x accessory x goal the
printable PNG (``--dpi``) and PDF at real size and a preview, and ``DIR/report.html``.
"""

from __future__ import annotations

import argparse
import os
from dataclasses import replace

from facerobust.attacks.accessory import ACCESSORIES
from facerobust.cli.common import (
    add_data_arguments,
    add_out_argument,
    data_source,
    print_gate_study,
    run_output,
)
from facerobust.eval.physical_study import Judges, StudyOptions, also_systems, run_physical
from facerobust.eval.results_physical import PhysicalResults, physical_overview
from facerobust.eval.study_run import run_study, source_identity
from facerobust.service.blackbox import GateAccess
from facerobust.service.physical_gate import GateOracle
from facerobust.system import FaceSystem
from facerobust.system.physical import GOALS, PhysicalOptions
from facerobust.system.spec import SystemSpec


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", default="dlib-resnet", help="the face system's model")
    parser.add_argument("--defense", default="none", help="the face system's defense spec")
    parser.add_argument("--detector", default="hog", help="face detector chain")
    parser.add_argument("--threshold", type=float, default=0.0,
                        help="0 = the model card's FAR=1e-3 threshold")
    parser.add_argument("--detectors", action="append", default=[], metavar="FILE",
                        help="adversarial-input detectors of the face system (files saved by "
                             "`facerobust detect --save`; repeatable): a flagged capture is "
                             "rejected. The accessory is not optimised against them (naive) "
                             "unless --adaptive is given")
    parser.add_argument("--adaptive", type=float, default=0.0, metavar="WEIGHT",
                        help="optimise the accessory to also keep every --detectors score "
                             "under its threshold, with this weight (adaptive attacker; "
                             "e.g. 1.0; default 0: naive)")
    parser.add_argument("--accessory", default="eyeglasses",
                        help=f"comma-separated: {', '.join(ACCESSORIES)}")
    parser.add_argument("--goal", default="dodging,impersonation",
                        help=f"comma-separated: {', '.join(GOALS)} (untargeted / targeted: "
                             "closed-set identification over the study's attackers and "
                             "victims; default: dodging,impersonation)")
    parser.add_argument("--per-photo", action="store_true",
                        help="one accessory per photo (upper bound) instead of one universal "
                             "accessory per attacker")
    parser.add_argument("--attackers", type=int, default=2)
    parser.add_argument("--photos", type=int, default=5,
                        help="photos per attacker: 1 enrolled, the rest train / held-out")
    parser.add_argument("--steps", type=int, default=60)
    parser.add_argument("--eot-samples", type=int, default=4)
    parser.add_argument("--heldout", type=int, default=6, help="held-out captures per photo")
    parser.add_argument("--min-feature-mm", type=float, default=3.0)
    parser.add_argument("--dpi", type=int, default=300)
    parser.add_argument("--also", action="append", default=[], metavar="MODEL[@DEFENSE]",
                        help="another face system judging the same captures (repeatable): "
                             "transfer to another model, or a defense the accessory was not "
                             "crafted against, e.g. mobilefacenet or dlib-resnet@jpeg:q=75")
    parser.add_argument("--gate", default="", metavar="URL",
                        help="also send every held-out capture to this running gate's /verify "
                             "(targets enrolled with --gate-admin-key, mode=replace)")
    parser.add_argument("--gate-key", default=os.environ.get("FACEROBUST_GATE_KEY", ""),
                        help="the attacker's client key (default $FACEROBUST_GATE_KEY)")
    parser.add_argument("--gate-admin-key",
                        default=os.environ.get("FACEROBUST_GATE_ADMIN_KEY", ""),
                        help="admin key to enroll the targets (default "
                             "$FACEROBUST_GATE_ADMIN_KEY)")
    parser.add_argument("--seed", type=int, default=0)
    add_data_arguments(parser)
    add_out_argument(parser, required=True)
    parser.add_argument("--no-progress", action="store_true")


def _options(args: argparse.Namespace) -> StudyOptions:
    attack = PhysicalOptions(steps=args.steps, eot_samples=args.eot_samples,
                             heldout_captures=args.heldout,
                             min_feature_mm=args.min_feature_mm, seed=args.seed,
                             adaptive=args.adaptive)
    if args.adaptive > 0 and not args.detectors:
        raise ValueError("--adaptive needs the detectors to evade: give --detectors FILE")
    return StudyOptions(accessories=tuple(a.strip() for a in args.accessory.split(",")),
                        goals=tuple(g.strip() for g in args.goal.split(",")),
                        universal=not args.per_photo, attackers=args.attackers,
                        photos=args.photos, attack=attack, dpi=args.dpi, seed=args.seed,
                        progress=not args.no_progress, also=tuple(args.also))


def _gate(args: argparse.Namespace) -> GateOracle | None:
    if not args.gate:
        return None
    if not args.gate_key or not args.gate_admin_key:
        raise ValueError("--gate needs --gate-key and --gate-admin-key (or $FACEROBUST_GATE_KEY "
                         "/ $FACEROBUST_GATE_ADMIN_KEY)")
    oracle = GateOracle(GateAccess(args.gate, args.gate_key, args.gate_admin_key))
    oracle.admin.health()  # reachable before any work
    return oracle


def run(args: argparse.Namespace) -> int:
    options = _options(args)  # every option checked before the model loads
    gate = _gate(args)
    spec = SystemSpec(model=args.model, defense=args.defense, detector=args.detector,
                      threshold=args.threshold, detectors=tuple(args.detectors))
    out = run_output(args.out, force=args.force)
    source = data_source(args)
    settings = {"system": spec, "data": source_identity(source),
                "options": replace(options, progress=False), "gate": args.gate}

    def compute() -> PhysicalResults:
        system = FaceSystem.from_spec(spec, where="physical-attack")
        judges = Judges(also_systems(options, spec.detector), gate)
        return run_physical(system, source, options, out.folder, judges)

    try:
        res = run_study(out, PhysicalResults, settings, compute, force=args.force)
    finally:
        if gate is not None:
            gate.close()
    return print_gate_study(physical_overview(res.result).sentences, res.results)
