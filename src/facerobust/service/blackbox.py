"""Black-box impersonation of a live gate over HTTP with the library's Square / HopSkipJump.

For each impostor pair of a dataset's protocol (attacker photo A, victim B), the victim is
enrolled with photo B (admin key) and the attacker perturbs *photo A* (the whole photo: the
gate re-detects and re-aligns every query) until ``POST /verify`` with ``claimed_identity=B``
accepts it. Square uses the exposed score (margin = threshold - score); HopSkipJump only the
decision, starting from the victim's photo. Each query's distance from the clean photo is
logged, so success and queries-to-success are read per budget ``eps`` from the log.

With the gate's limits (``limits`` of its config) the same query counts give the time an
attacker needs at the allowed rate and whether the lock-out (N rejections) stops the attack
first; a live run against a limited gate records the 429s, the time waited and lock-outs.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from tqdm import tqdm

from facerobust.attacks.criteria import Impersonation
from facerobust.attacks.registry import attack_entry, build_attack
from facerobust.attacks.threat import LINF, Threat, threat_for
from facerobust.data.chips import read_image
from facerobust.data.sources import Dataset
from facerobust.eval.datasource import DataSource, ImpostorPair, as_dataset, impostor_pairs
from facerobust.eval.results_file import write_result_file
from facerobust.eval.results_gate import GateAttackResults, Sample
from facerobust.service.client import GateClient, GateLockedOut, RemoteVerifier
from facerobust.service.config import LimitsSection
from facerobust.service.remote import RemoteAPI, RemoteClient
from facerobust.service.summary import budget_time, summarise

LIMIT_KEYS = ("key_rate", "key_burst", "identity_rate", "identity_burst", "max_rejections",
              "lockout_window_s")


@dataclass(frozen=True)
class GateAccess:
    """A running gate: its base ``url``, a client ``key`` and the ``admin_key`` that enrolls
    the victims."""

    url: str
    key: str
    admin_key: str


@dataclass(frozen=True)
class GateAttackOptions:
    """The black-box attack (``square`` or ``hsj``) in its ``norm`` ball at each budget of
    ``epsilons`` with ``queries`` per pair on ``n`` impostor pairs (seeded); ``scores``
    (default: Square uses them, HSJ not); the gate's ``limits`` for the time figures;
    ``wait`` out 429s up to ``max_wait_s`` in total."""

    attack: str = "square"
    norm: str = LINF.name
    epsilons: tuple[float, ...] = (8 / 255,)
    queries: int = 500
    n: int = 10
    seed: int = 0
    scores: bool | None = None
    limits: LimitsSection | None = None
    wait: bool = True
    max_wait_s: float = 600.0
    progress: bool = True

    def __post_init__(self) -> None:
        entry = attack_entry(self.attack, threat_for(self.norm), where="attack-gate")
        if entry.kind == "white-box":
            raise ValueError(f"attack-gate runs black-box attacks (square, hsj), not "
                             f"{self.attack!r}")
        if self.n < 1 or self.queries < 2:
            raise ValueError(f"need n >= 1 and queries >= 2, got n={self.n}, "
                             f"queries={self.queries}")

    @property
    def threat(self) -> Threat:
        return threat_for(self.norm)

    def budgets(self) -> list[list[float]]:
        """Square runs once per budget, HopSkipJump once for all budgets."""
        eps = list(self.epsilons)
        return [[e] for e in eps] if self.attack == "square" else [eps]


def load_photo(path: Path) -> torch.Tensor:
    """A photo file as a float CHW RGB tensor in [0, 1]."""
    rgb, reason = read_image(Path(path).read_bytes())
    if rgb is None:
        raise ValueError(f"{path}: {reason}")
    return torch.from_numpy(rgb).permute(2, 0, 1).float().div(255.0)


def _attack(name: str, threat: Threat, queries: int, start: torch.Tensor | None) -> Any:

    return build_attack(name, threat, queries=queries, starting_points=start,
                        where="attack-gate")


def _start(pair: ImpostorPair, x: torch.Tensor, attack: str) -> torch.Tensor | None:
    """HopSkipJump's starting point: the victim's photo at the attacker photo's size."""
    if attack != "hsj":
        return None
    start = load_photo(pair.victim_photo)[None]
    if start.shape != x.shape:
        start = torch.nn.functional.interpolate(start, size=x.shape[2:], mode="bilinear")
    return start


@dataclass
class _Tally:
    """What one pair's queries showed, over its budgets."""

    total: int = 0
    locked: bool = False
    refused: int = 0
    seen: list[float] = field(default_factory=list)  # scores within the largest budget
    accepted: list[float] = field(default_factory=list)  # Linf of accepted queries


def attack_one(client: GateClient, pair: ImpostorPair, options: GateAttackOptions,
               *, scores: bool, seed: int) -> Sample:
    """Attack one pair through the gate; Square runs once per budget, HopSkipJump once for
    all budgets; queries-to-success per budget is read from the query log."""
    threat, attack = options.threat, options.attack
    x = load_photo(pair.photo)[None]
    start = _start(pair, x, attack)
    before = (client.stats.rate_limited, client.stats.waited_s)
    t0, tally = time.monotonic(), _Tally()
    q2s: dict[str, int | None] = {}
    for budget in options.budgets():
        model = RemoteVerifier(client, pair.victim, x[0], use_scores=scores)
        thr = float(client.health().get("threshold", 0.0) or 0.0) if scores else 0.5
        crit = Impersonation(torch.zeros(1, 1), threshold=thr, metric="euclidean")
        try:
            if not tally.locked:
                eps = budget if attack == "square" else [float("inf")]
                _attack(attack, threat, options.queries, start)(
                    model, x, crit, epsilons=eps,
                    generator=torch.Generator().manual_seed(seed))
        except GateLockedOut:
            tally.locked = True
        _count(tally, model, max(budget))
        for e in budget:
            q2s[threat.format_epsilon(e)] = model.queries_to_success(e, threat)
    seen, accepted = tally.seen, tally.accepted
    return Sample(str(pair.photo), pair.victim, tally.total, q2s,
                  client.stats.rate_limited - before[0],
                  round(client.stats.waited_s - before[1], 3), tally.locked,
                  round(time.monotonic() - t0, 3), seen[0] if seen else None,
                  min(seen) if seen else None, min(accepted) if accepted else None,
                  tally.refused)


def _count(tally: _Tally, model: RemoteVerifier, largest: float) -> None:
    tally.total += len(model.log)
    tally.accepted += [q.linf for q in model.log if q.accepted]
    tally.refused += sum(q.status != 200 for q in model.log)
    tally.seen += [q.score for q in model.log if q.score is not None and q.linf <= largest + 1e-6]


def usable_pairs(client: GateClient, pairs: list[ImpostorPair], admin_key: str, n: int,
                 skipped: list[dict[str, str]]) -> list[ImpostorPair]:
    """The first ``n`` pairs whose victim enrolls (a face found) and whose attacker photo the
    gate can use; the others go to ``skipped`` with the gate's reason."""
    out: list[ImpostorPair] = []
    for pair in pairs:
        if len(out) == n:
            break
        try:
            client.enroll(pair.victim, [pair.victim_photo.read_bytes()], admin_key)
        except ValueError as err:
            skipped.append({"path": str(pair.victim_photo), "reason": str(err)})
            continue
        ans = client.verify(pair.photo.read_bytes(), pair.victim, "image/jpeg")
        if ans.status != 200:
            skipped.append({"path": str(pair.photo), "reason": ans.error})
            continue
        out.append(pair)
    return out


def study_pairs(source: Dataset | DataSource | Path | str, n: int, seed: int
                ) -> list[ImpostorPair]:
    """``3 n`` candidate impostor pairs of any dataset layout (the protocol's, or a generated
    one): a gate study keeps the first ``n`` the gate can use."""
    return impostor_pairs(as_dataset(source), 3 * n, seed)


def run_gate_attack(gate: GateAccess, options: GateAttackOptions, *,
                    source: Dataset | DataSource | Path | str, out: Path,
                    remote: RemoteAPI | None = None) -> Path:
    """Attack ``options.n`` impostor pairs of ``source`` through the gate (or the HTTP API
    ``remote`` describes); writes ``out`` (a ``results.json`` of kind ``gate-attack``;
    ``facerobust report`` renders it)."""
    o = options
    pairs = study_pairs(source, o.n, o.seed)
    skipped: list[dict[str, str]] = []
    client = (GateClient(gate.url, gate.key, wait=o.wait, max_wait_s=o.max_wait_s)
              if remote is None else
              RemoteClient(remote, wait=o.wait, max_wait_s=o.max_wait_s))
    try:
        health = client.health()
        use_scores = (o.attack == "square") if o.scores is None else o.scores
        if use_scores and o.attack == "square" and "threshold" not in health:
            raise ValueError("the gate does not expose scores (or a remote description has no "
                             "score and threshold): Square needs them (use hsj)")
        pairs = usable_pairs(client, pairs, gate.admin_key, o.n, skipped)
        iterator: Any = tqdm(pairs, desc=f"{o.attack} via HTTP", unit="pair") \
            if o.progress else pairs
        samples = [attack_one(client, pair, o, scores=use_scores, seed=o.seed + i)
                   for i, pair in enumerate(iterator)]
    finally:
        client.close()
    eps = list(o.epsilons)
    result = GateAttackResults(
        health, o.attack, o.norm, o.queries, use_scores,
        {} if o.limits is None else {k: getattr(o.limits, k) for k in LIMIT_KEYS},
        summarise(samples, eps, o.limits, o.threat), samples, skipped,
        budget_time_at_rate_s=budget_time(o.queries * len(o.budgets()), o.limits))
    return write_result_file(out, result)
