"""The ``[[certify]]`` unit: randomized-smoothing certificates of the victim's decisions on the
experiment's own pairs (or identification probes), at one noise level, with the adaptive
EOT-PGD attack run on every certified probe within its radius."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Sequence

import numpy as np
import torch

from facerobust.core.stats import Rate
from facerobust.defenses.smoothing import Decider, SmoothingOptions
from facerobust.defenses.smoothing_attack import SmoothAttackOptions
from facerobust.eval.certify_config import CertifyConfig
from facerobust.eval.experiment import Experiment
from facerobust.eval.results_certify import CertifiedGroup, CertifyUnit
from facerobust.eval.tasks import spread
from facerobust.system.certify import (
    ACCEPT,
    REJECT,
    ProbeCertificate,
    certify_probes,
    logits_decider,
    verification_decider,
)

CURVE_POINTS = 41
GROUP_SEED_STRIDE = 100_003  # probe i of group g draws with seed + g * stride + 2 * i


def certify_key(index: int, sigma: float, victim: str) -> str:
    return f"certify-{index}-s{sigma:g}-{victim}"


def _attack(ccfg: CertifyConfig) -> SmoothAttackOptions | None:
    if ccfg.attack_steps == 0:
        return None
    return SmoothAttackOptions(steps=ccfg.attack_steps, eot=ccfg.attack_eot)


def attack_label(ccfg: CertifyConfig) -> str:
    if ccfg.attack_steps == 0:
        return "none"
    return f"EOT-PGD L2, {ccfg.attack_steps} steps x {ccfg.attack_eot} noise draws"


def summarise(name: str, decision: str, probes: Sequence[ProbeCertificate],
              base_correct: Rate, radii: Sequence[float]) -> CertifiedGroup:
    """One group's rates, curve and attack count from its per-probe certificates."""
    radius = [p.certificate.radius if p.correct else None for p in probes]
    top = max([r for r in radius if r is not None] + [max(radii, default=0.0), 1e-3])
    grid = np.linspace(0.0, 1.05 * top, CURVE_POINTS).tolist()
    n = len(probes)
    attacked = [p for p in probes if p.attack_flipped is not None]
    seconds = sum(p.certificate.seconds for p in probes) / n if n else 0.0
    return CertifiedGroup(
        name=name, decision=decision, n=n, radius=radius,
        abstain=[p.certificate.abstained for p in probes],
        certified=[Rate(sum(p.certified(r) for p in probes), n) for r in radii],
        abstained=Rate(sum(p.certificate.abstained for p in probes), n),
        smoothed_correct=Rate(sum(p.correct for p in probes), n), base_correct=base_correct,
        curve_radii=grid, curve=[sum(p.certified(r) for p in probes) / n if n else 0.0
                                 for r in grid],
        attacked=len(attacked), attack_flips=sum(bool(p.attack_flipped) for p in attacked),
        seconds_per_certificate=seconds)


def _verification_groups(exp: Experiment, ccfg: CertifyConfig, options: SmoothingOptions
                         ) -> list[CertifiedGroup]:
    system, pairs = exp.system(), exp.pairs
    accepted = np.asarray(system.accepts(exp.distances(exp.victim)), dtype=bool)
    emb = exp.embeddings(exp.victim)
    groups = []
    for g, (name, same, label) in enumerate((("genuine", True, ACCEPT),
                                             ("impostor", False, REJECT))):
        rows = spread(np.flatnonzero(pairs.same == same), ccfg.samples)
        chips = exp.chips.chips[torch.as_tensor(pairs.a[rows])]
        deciders = [verification_decider(system, emb[int(b)]) for b in pairs.b[rows]]
        probes = certify_probes(deciders, chips, [label] * len(rows),
                                _seeded(options, g), _attack(ccfg))
        base = Rate.of(accepted[rows] == same)
        groups.append(summarise(name, "accept" if same else "reject", probes, base,
                                ccfg.radii))
    return groups


def _identification_group(exp: Experiment, ccfg: CertifyConfig, options: SmoothingOptions
                          ) -> CertifiedGroup:
    probe_rows, labels = exp.probe_rows()
    pick = spread(np.arange(len(probe_rows)), ccfg.samples)
    rows, labels = probe_rows[pick], labels[pick]
    model = exp.identification_model(exp.victim)
    decider: Decider = logits_decider(model, model.names or
                                      [str(i) for i in range(int(labels.max()) + 2)])
    chips = exp.chips.chips[torch.as_tensor(rows)]
    with torch.no_grad():
        top1 = model.head(exp.embeddings(exp.victim)[torch.as_tensor(rows)]).argmax(1)
    probes = certify_probes([decider] * len(rows), chips, labels.tolist(),
                            _seeded(options, 0), _attack(ccfg))
    return summarise("identification", "identity", probes, Rate.of(top1.numpy() == labels),
                     ccfg.radii)


def _seeded(options: SmoothingOptions, group: int) -> SmoothingOptions:
    return dataclasses.replace(options, seed=options.seed + group * GROUP_SEED_STRIDE)


def certify_unit(exp: Experiment, ccfg: CertifyConfig, index: int, sigma: float,
                 seed: int) -> CertifyUnit:
    """Certificates of the victim's decisions at noise ``sigma`` (see the module docstring)."""
    start = time.perf_counter()
    options = SmoothingOptions(sigma=sigma, n0=ccfg.n0, n=ccfg.n, alpha=ccfg.alpha,
                               batch=ccfg.batch, seed=seed)
    groups = (_verification_groups(exp, ccfg, options) if ccfg.goal == "verification"
              else [_identification_group(exp, ccfg, options)])
    return CertifyUnit(key=certify_key(index, sigma, exp.victim), model=exp.victim,
                       goal=ccfg.goal, sigma=sigma, n0=ccfg.n0, n=ccfg.n, alpha=ccfg.alpha,
                       radii=list(ccfg.radii), attack=attack_label(ccfg), groups=groups,
                       seconds=time.perf_counter() - start)
