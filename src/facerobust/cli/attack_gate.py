"""``facerobust attack-gate URL``: black-box impersonation of a running gate over HTTP.

Square (needs ``expose_scores``) or HopSkipJump (decision only) perturb attacker photos of the
dataset's impostor pairs (any layout: its protocol, or a generated one) until ``/verify``
accepts the claimed victim; the victims are enrolled first with the admin key.
``--gate-config`` (the gate's TOML) adds, for each budget, the time the attack needs at the
gate's allowed rate and its success before the lock-out. Writes ``--out DIR/results.json``
(kind ``gate-attack``) and ``DIR/report.html``. In place of the URL, a TOML file with a
``[remote]`` table describes any other HTTP face API (docs/gate.md, :mod:`facerobust.service.
remote`); its auth is in the file (or the environment), so no --key / --admin-key.

``--mode lookalike`` measures the ``/identify`` oracle instead: it enrolls ``--gallery`` people
of the dataset and sends ``--probes`` photos of other people to ``/identify`` until the gate
names someone (a natural look-alike), then tries each at ``/verify`` (kind ``gate-lookalike``;
facerobust's own gate only).
"""

from __future__ import annotations

import argparse
from dataclasses import replace
from pathlib import Path

from facerobust.attacks import parse_epsilons
from facerobust.attacks.threat import LINF, threat_names
from facerobust.cli.common import (
    add_data_arguments,
    add_gate_client_arguments,
    add_out_argument,
    data_source,
    gate_access,
    print_gate_study,
    run_output,
)
from facerobust.eval.results_file import read_document
from facerobust.eval.results_gate import GateAttackResults, LookalikeResults, lookalike_overview
from facerobust.eval.study_run import run_study, source_identity
from facerobust.service.blackbox import GateAccess, GateAttackOptions, run_gate_attack
from facerobust.service.config import LimitsSection, load_gate_config
from facerobust.service.lookalike import LookalikeOptions, run_lookalike
from facerobust.service.remote import load_remote
from facerobust.service.summary import describe


def configure(parser: argparse.ArgumentParser) -> None:

    add_gate_client_arguments(parser)
    parser.add_argument("--mode", default="perturb", choices=("perturb", "lookalike"),
                        help="perturb attacker photos (default), or search natural look-alikes "
                             "through /identify")
    parser.add_argument("--gallery", type=int, default=50,
                        help="lookalike: people enrolled, one photo each")
    parser.add_argument("--probes", type=int, default=300,
                        help="lookalike: photos of other people sent to /identify")
    parser.add_argument("--attack", default="square", choices=("square", "hsj"))
    parser.add_argument("--norm", default=LINF.name, choices=threat_names())
    parser.add_argument("--eps", default="8/255", help="comma-separated budgets, e.g. 4/255,8/255")
    parser.add_argument("--queries", type=int, default=500, help="query budget per pair")
    parser.add_argument("--n", type=int, default=10, help="impostor pairs to attack")
    add_data_arguments(parser)
    parser.add_argument("--gate-config", type=Path, default=None,
                        help="the gate's TOML: report time at its rate limits and lock-out")
    parser.add_argument("--no-wait", action="store_true",
                        help="stop a pair at the first 429 instead of waiting Retry-After")
    parser.add_argument("--max-wait", type=float, default=600.0,
                        help="seconds of Retry-After waiting allowed in total")
    parser.add_argument("--seed", type=int, default=0)
    add_out_argument(parser)
    parser.add_argument("--no-progress", action="store_true")


def run(args: argparse.Namespace) -> int:

    remote = load_remote(args.url) if args.url.endswith(".toml") else None
    gate = gate_access(args) if remote is None else GateAccess(remote.url, "", "")
    limits = load_gate_config(args.gate_config).limits if args.gate_config else None
    if args.mode == "lookalike":
        if remote is not None:
            raise ValueError("--mode lookalike searches facerobust's own gate (/identify): "
                             "give its URL, not a [remote] description")
        return run_lookalike_mode(args, gate, limits)
    options = GateAttackOptions(
        attack=args.attack, norm=args.norm, epsilons=tuple(parse_epsilons(args.eps)),
        queries=args.queries, n=args.n, seed=args.seed, limits=limits,
        wait=not args.no_wait, max_wait_s=args.max_wait, progress=not args.no_progress)
    out = run_output(args.out, force=args.force)
    source = data_source(args)
    secretless = None if remote is None else replace(
        remote, auth_value="", enroll=remote.enroll and replace(remote.enroll, auth_value=""))
    settings = {"gate": args.url if remote is None else secretless,
                "data": source_identity(source),
                "options": replace(options, progress=False),
                "gate_config": str(args.gate_config or "")}

    def compute() -> GateAttackResults:
        done = run_gate_attack(gate, options, source=source, out=out.results, remote=remote)
        return GateAttackResults.from_dict(read_document(done), where=str(done))

    res = run_study(out, GateAttackResults, settings, compute, force=args.force)
    return print_gate_study(describe(res.result), res.results)


def run_lookalike_mode(args: argparse.Namespace, gate: GateAccess,
                       limits: LimitsSection | None) -> int:
    options = LookalikeOptions(gallery=args.gallery, probes=args.probes, seed=args.seed,
                               limits=limits, wait=not args.no_wait,
                               max_wait_s=args.max_wait, progress=not args.no_progress)
    out = run_output(args.out, force=args.force)
    source = data_source(args)
    settings = {"gate": args.url, "data": source_identity(source), "mode": "lookalike",
                "options": replace(options, progress=False),
                "gate_config": str(args.gate_config or "")}

    def compute() -> LookalikeResults:
        done = run_lookalike(gate, options, source=source, out=out.results)
        return LookalikeResults.from_dict(read_document(done), where=str(done))

    res = run_study(out, LookalikeResults, settings, compute, force=args.force)
    return print_gate_study(lookalike_overview(res.result).sentences, res.results)
