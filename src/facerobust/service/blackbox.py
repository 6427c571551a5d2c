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

import random
import time
from importlib import resources
from pathlib import Path
from typing import Any

import torch
from tqdm import tqdm

from facerobust.attacks.criteria import Impersonation
from facerobust.attacks.registry import attack_entry, build_attack
from facerobust.attacks.threat import Threat, threat_for
from facerobust.data.chips import read_image
from facerobust.data.lfw import LFWPairs
from facerobust.data.resolve import resolve_dataset
from facerobust.eval.results_file import write_result_file
from facerobust.eval.results_gate import GateAttackResults, Sample
from facerobust.service.client import GateClient, GateLockedOut, RemoteVerifier
from facerobust.service.config import LimitsSection
from facerobust.service.summary import budget_time, summarise


def impostor_pairs(root: Path, n: int, seed: int) -> list[tuple[Path, Path]]:
    """``n`` impostor pairs (attacker photo, victim photo) of the dataset's LFW protocol."""

    pairs = [(p.path_a, p.path_b) for p in LFWPairs(root).pairs if not p.same]
    if not pairs:
        raise ValueError(f"{root}: the protocol has no impostor pairs")
    random.Random(seed).shuffle(pairs)
    return pairs[:n]


def load_photo(path: Path) -> torch.Tensor:

    rgb, reason = read_image(Path(path).read_bytes())
    if rgb is None:
        raise ValueError(f"{path}: {reason}")
    return torch.from_numpy(rgb).permute(2, 0, 1).float().div(255.0)


def _attack(name: str, threat: Threat, queries: int, start: torch.Tensor | None) -> Any:

    return build_attack(name, threat, queries=queries, starting_points=start,
                        where="attack-gate")


def attack_one(client: GateClient, photo: Path, victim_photo: Path, victim: str, *,
               attack: str, threat: Threat, epsilons: list[float], queries: int,
               scores: bool, seed: int) -> Sample:
    """Attack one pair; Square runs once per budget, HopSkipJump once for all budgets."""


    x = load_photo(photo)[None]
    start = None
    if attack == "hsj":
        start = load_photo(victim_photo)[None]
        if start.shape != x.shape:
            start = torch.nn.functional.interpolate(start, size=x.shape[2:], mode="bilinear")
    before = (client.stats.requests, client.stats.rate_limited, client.stats.waited_s)
    t0, locked, total = time.monotonic(), False, 0
    q2s: dict[str, int | None] = {}
    seen: list[float] = []
    accepted: list[float] = []
    refused = 0
    runs = [[e] for e in epsilons] if attack == "square" else [list(epsilons)]
    for budget in runs:
        model = RemoteVerifier(client, victim, x[0], use_scores=scores)
        crit = Impersonation(torch.zeros(1, 1), threshold=0.5, metric="euclidean")
        if scores:
            thr = float(client.health().get("threshold", 0.0) or 0.0)
            crit = Impersonation(torch.zeros(1, 1), threshold=thr, metric="euclidean")
        try:
            if not locked:
                eps = budget if attack == "square" else [float("inf")]
                _attack(attack, threat, queries, start)(
                    model, x, crit, epsilons=eps,
                    generator=torch.Generator().manual_seed(seed))
        except GateLockedOut:
            locked = True
        total += len(model.log)
        accepted += [q.linf for q in model.log if q.accepted]
        refused += sum(q.status != 200 for q in model.log)
        seen += [q.score for q in model.log if q.score is not None
                 and q.linf <= max(budget) + 1e-6]
        for e in budget:
            q2s[threat.format_epsilon(e)] = model.queries_to_success(e, threat)
    return Sample(str(photo), victim, total, q2s, client.stats.rate_limited - before[1],
                  round(client.stats.waited_s - before[2], 3), locked,
                  round(time.monotonic() - t0, 3), seen[0] if seen else None,
                  min(seen) if seen else None, min(accepted) if accepted else None, refused)


def usable_pairs(client: GateClient, pairs: list[tuple[Path, Path]], admin_key: str, n: int,
                 skipped: list[dict[str, str]]) -> list[tuple[Path, Path]]:
    """The first ``n`` pairs whose victim enrolls (a face found) and whose attacker photo the
    gate can use; the others go to ``skipped`` with the gate's reason."""
    out: list[tuple[Path, Path]] = []
    for photo, victim_photo in pairs:
        if len(out) == n:
            break
        try:
            client.enroll(victim_photo.parent.name, [victim_photo.read_bytes()], admin_key)
        except ValueError as err:
            skipped.append({"path": str(victim_photo), "reason": str(err)})
            continue
        ans = client.verify(photo.read_bytes(), victim_photo.parent.name, "image/jpeg")
        if ans.status != 200:
            skipped.append({"path": str(photo), "reason": ans.error})
            continue
        out.append((photo, victim_photo))
    return out


def run_gate_attack(url: str, *, key: str, admin_key: str, attack: str, norm: str,
                    epsilons: list[float], queries: int, n: int, out: Path,
                    dataset: str = "lfw-demo", data: Path | None = None, seed: int = 0,
                    scores: bool | None = None, limits: LimitsSection | None = None,
                    wait: bool = True, max_wait_s: float = 600.0,
                    progress: bool = True) -> Path:
    """Attack ``n`` impostor pairs through the gate at ``url``; writes ``out/results.json``
    (kind ``gate-attack``; ``facerobust report`` renders it)."""

    threat = threat_for(norm)
    entry = attack_entry(attack, threat, where="attack-gate")
    if entry.kind == "white-box":
        raise ValueError(f"attack-gate runs black-box attacks (square, hsj), not {attack!r}")
    if n < 1 or queries < 2:
        raise ValueError(f"need n >= 1 and queries >= 2, got n={n}, queries={queries}")
    out = Path(out)
    target = out / "results.json"
    if target.exists():
        raise ValueError(f"{target} exists: choose another --out (results are not overwritten)")
    root = dataset_root(dataset, data)
    pairs = impostor_pairs(root, 3 * n, seed)
    skipped: list[dict[str, str]] = []
    client = GateClient(url, key, wait=wait, max_wait_s=max_wait_s)
    try:
        gate = client.health()
        use_scores = (attack == "square") if scores is None else scores
        if use_scores and attack == "square" and "threshold" not in gate:
            raise ValueError("the gate does not expose scores: Square needs them (use hsj)")
        pairs = usable_pairs(client, pairs, admin_key, n, skipped)
        samples = []
        iterator: Any = pairs
        if progress:
            iterator = tqdm(pairs, desc=f"{attack} via HTTP", unit="pair")
        for i, (photo, victim_photo) in enumerate(iterator):
            samples.append(attack_one(client, photo, victim_photo, victim_photo.parent.name,
                                      attack=attack, threat=threat, epsilons=epsilons,
                                      queries=queries, scores=use_scores, seed=seed + i))
    finally:
        client.close()
    result = GateAttackResults(
        gate, attack, norm, queries, use_scores,
        {} if limits is None else {k: getattr(limits, k) for k in
                                   ("key_rate", "key_burst", "identity_rate", "identity_burst",
                                    "max_rejections", "lockout_window_s")},
        summarise(samples, epsilons, limits, threat), samples, skipped,
        budget_time_at_rate_s=budget_time(queries * (len(epsilons) if attack == "square"
                                                     else 1), limits))
    return write_result_file(target, result)


def dataset_root(dataset: str, data: Path | None) -> Path:
    if dataset == "lfw-demo" and data is None:

        return Path(str(resources.files("facerobust.data").joinpath("demo/lfw-demo")))

    return resolve_dataset(dataset, data)
