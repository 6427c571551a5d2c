"""Arguments shared by the commands: the one-unit audits' run arguments, the one dataset
default and data arguments, the one ``--out`` policy of the study commands
(:func:`run_output`) and the gate clients' URL and keys."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from facerobust.data.resolve import default_dataset
from facerobust.data.sources import LAYOUTS
from facerobust.eval.commands import CommandRun
from facerobust.eval.datasource import DataSource
from facerobust.eval.study_run import RunOutput, check_study_folder
from facerobust.report import render_report
from facerobust.service.blackbox import GateAccess

RESULTS = "results.json"


def add_run_arguments(parser: argparse.ArgumentParser) -> None:
    """``--head``, ``--batch-size``, ``--seed``, ``--out`` and ``--no-progress``."""
    parser.add_argument("--head", default="", metavar="PATH",
                        help="identification head saved by `facerobust train-head` (its "
                             "identities and split are used)")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, required=True,
                        help="output folder (results.json, report.html, config.toml); "
                             "re-running into it resumes")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")
    add_force_argument(parser)


def command_run(args: argparse.Namespace) -> CommandRun:
    """The shared run settings of a one-unit audit command (``--model``, ``--dataset``,
    ``--data`` and the arguments of :func:`add_run_arguments`)."""
    return CommandRun(model=args.model, out=args.out, dataset=args.dataset, data=args.data,
                      head=args.head, batch_size=args.batch_size, seed=args.seed,
                      progress=not args.no_progress, force=args.force)


def add_force_argument(parser: argparse.ArgumentParser, text: str = "") -> None:
    parser.add_argument("--force", action="store_true",
                        help=text or "write into --out even when it holds a results.json that "
                                     "is not from a facerobust run")


def add_data_arguments(parser: argparse.ArgumentParser, *, listing: bool = True) -> None:
    """``--dataset`` (default :func:`default_dataset`), ``--data``, ``--layout`` and (with
    ``listing``) ``--listing``: what :class:`DataSource` opens (any layout)."""
    parser.add_argument("--dataset", default=default_dataset(),
                        help="dataset name (default: lfw when FACEROBUST_DATA or the cache "
                             "holds an LFW copy, else the embedded lfw-demo)")
    parser.add_argument("--data", type=Path, default=None,
                        help="dataset folder, or a folder containing it (any layout)")
    parser.add_argument("--layout", default="auto", choices=LAYOUTS,
                        help="dataset layout (default: detected)")
    if listing:
        parser.add_argument("--listing", default="",
                            help="listing file of a flat folder (layout 'listing')")


def data_source(args: argparse.Namespace) -> DataSource:
    """The :class:`DataSource` of :func:`add_data_arguments`."""
    return DataSource(dataset=args.dataset, data=Path(args.data) if args.data else None,
                      layout=getattr(args, "layout", "auto"),
                      listing=getattr(args, "listing", ""))


def run_output(out: Path, *, legacy_suffix: str = "", new_form: str = "",
               force: bool = False) -> RunOutput:
    """Where a study writes: ``--out DIR`` is its run folder (``DIR/results.json``, refused
    at once when it is not from facerobust, unless ``force``;
    :func:`facerobust.eval.study_run.run_study` reuses a finished run there with the same
    settings and recomputes changed ones). ``--out FILE<legacy_suffix>`` (the command's old
    form) still works, with a note naming ``new_form``; an existing ``FILE`` is not
    overwritten without ``--force``."""
    out = Path(out)
    if legacy_suffix and out.suffix == legacy_suffix:
        print(f"note: --out {out} is the old form; the new one is --out DIR, {new_form}",
              file=sys.stderr)
        if out.exists() and not force:
            raise ValueError(f"{out} exists: pass --force to overwrite it, or choose another "
                             "--out")
        folder = out.parent if str(out.parent) else Path(".")
        folder.mkdir(parents=True, exist_ok=True)
        return RunOutput(folder, out, legacy=True)
    if out.exists() and not out.is_dir():
        raise ValueError(f"--out {out} is a file; give a folder (the run folder holding "
                         f"{RESULTS})")
    check_study_folder(out, force=force)
    return RunOutput(out, out / RESULTS)


def add_out_argument(parser: argparse.ArgumentParser, *, required: bool = True,
                     old: str = "") -> None:
    """``--out DIR`` (the run folder) and ``--force``."""
    extra = f"; the old form {old} still works" if old else ""
    parser.add_argument("--out", type=Path, required=required, default=None,
                        help=f"run folder: {RESULTS} (typed, `facerobust report` renders it) "
                             f"and report.html{extra}")
    add_force_argument(parser, "write into --out even when it holds a results.json that is "
                               "not from facerobust (a finished run with the same settings "
                               "is reused, changed settings recompute, without --force)")


def print_skipped(skipped: list[dict[str, str]], shown: int = 10) -> None:
    """The first ``shown`` skipped files, under their own names, and the count (stderr)."""
    if not skipped:
        return
    print(f"{len(skipped)} image(s) skipped:", file=sys.stderr)
    for item in skipped[:shown]:
        print(f"  {item['path']}: {item['reason']}", file=sys.stderr)
    if len(skipped) > shown:
        print(f"  ... and {len(skipped) - shown} more (all listed in the JSON)", file=sys.stderr)


def add_gate_client_arguments(parser: argparse.ArgumentParser) -> None:
    """The gate URL, the client key and the admin key (both default to the environment)."""

    parser.add_argument("url", help="gate base URL, e.g. http://127.0.0.1:8000 (attack-gate: "
                        "or a TOML file whose [remote] table describes another HTTP face API)")
    parser.add_argument("--key", default=os.environ.get("FACEROBUST_GATE_KEY", ""),
                        help="client API key (default $FACEROBUST_GATE_KEY)")
    parser.add_argument("--admin-key", default=os.environ.get("FACEROBUST_GATE_ADMIN_KEY", ""),
                        help="admin key to enroll the victims (default "
                             "$FACEROBUST_GATE_ADMIN_KEY)")


def gate_access(args: argparse.Namespace) -> GateAccess:
    """The gate of :func:`add_gate_client_arguments`; both keys are required."""
    if not args.key or not args.admin_key:
        raise ValueError("--key and --admin-key (or $FACEROBUST_GATE_KEY / "
                         "$FACEROBUST_GATE_ADMIN_KEY) are required")
    return GateAccess(args.url, args.key, args.admin_key)


def print_gate_study(lines: list[str], results: Path) -> int:
    """A gate study's summary lines, then its rendered report and results paths."""
    print("\n".join(lines))
    print(f"report:  {render_report(results)}")
    print(f"results: {results}")
    return 0
