"""Derived figures of an audit's typed :class:`~.results_audit.Results`: accuracy curves,
attacked ROCs, transfer matrices, the verdict table, the short executive summary and the
methodology. Computed once here, before the file is written (or when an older file is
converted on read), so the report only renders."""

from __future__ import annotations

import dataclasses

import numpy as np
from sklearn.metrics import roc_auc_score, roc_curve

from facerobust.eval.kinds import UNIT_KINDS
from facerobust.eval.kinds.attack import PHRASES, pick
from facerobust.eval.results import AttackUnit
from facerobust.eval.results_audit import (
    AccuracyCurve,
    AttackedRoc,
    DatasetFacts,
    HeadlinePick,
    RateMatrix,
    Results,
    Summary,
)
from facerobust.eval.results_file import Verdict
from facerobust.eval.stats import Rate

NO_ATTACK = Rate(0, 0)


def _by_family(attacks: list[AttackUnit]) -> dict[str, dict[str, AttackUnit]]:
    families: dict[str, dict[str, AttackUnit]] = {}
    for atk in attacks:
        if atk.surrogates:  # crafted on other models: not the victim's curves
            continue
        families.setdefault(f"{atk.attack}-{atk.norm}", {})[atk.goal] = atk
    return families


def _still_right(clean_rates: list[float], successes: list[list[Rate]],
                 i: int) -> tuple[float, float, float]:
    """Mean over classes of ``clean x (1 - success)`` at epsilon ``i``, with the band spanned
    by the success rates' 95% intervals."""
    mid, low, high = [], [], []
    for clean, column in zip(clean_rates, successes, strict=True):
        s = column[i]
        lo, hi = s.ci95 if s.n else (0.0, 0.0)  # a goal not attacked adds no uncertainty
        mid.append(clean * (1 - s.rate))
        low.append(clean * (1 - hi))
        high.append(clean * (1 - lo))
    return float(np.mean(mid)), float(np.mean(low)), float(np.mean(high))


def accuracy_curves(results: Results) -> list[AccuracyCurve]:
    """Accuracy under attack vs epsilon (eps 0 = clean at the operating threshold).

    Attacks run on samples the victim decides correctly, so accuracy under attack is
    ``clean rate x (1 - success)`` per class (genuine under dodging, impostor under
    impersonation), averaged; ``low``/``high`` come from the success rates' 95% intervals.
    """
    clean = results.victim_clean
    if clean is None:
        return []
    curves = []
    for family, goals in _by_family(results.attacks).items():
        first = next(iter(goals.values()))
        eps = first.epsilons
        jobs = []
        if "dodging" in goals or "impersonation" in goals:
            jobs.append(("verification", [clean.genuine_accept.rate, clean.impostor_reject.rate],
                         [goals[g].success if g in goals else [NO_ATTACK] * len(eps)
                          for g in ("dodging", "impersonation")]))
        if "untargeted" in goals and clean.identification_top1 is not None:
            jobs.append(("identification", [clean.identification_top1.rate],
                         [goals["untargeted"].success]))
        for task, clean_rates, successes in jobs:
            points = [_still_right(clean_rates, successes, i) for i in range(len(eps))]
            start = float(np.mean(clean_rates))
            curves.append(AccuracyCurve(
                task=task, label=family.upper(), norm=first.norm, epsilons=[0.0, *eps],
                accuracy=[start, *[p[0] for p in points]], low=[start, *[p[1] for p in points]],
                high=[start, *[p[2] for p in points]]))
    return curves


def attacked_rocs(results: Results) -> list[AttackedRoc]:
    """ROC on the attack sample: genuine pairs under dodging vs impostors under impersonation,
    at each family's largest epsilon."""
    curves = []
    for family, goals in _by_family(results.attacks).items():
        if "dodging" not in goals or "impersonation" not in goals:
            continue
        dodge, imp = goals["dodging"], goals["impersonation"]
        genuine, impostor = dodge.score_adv[-1], imp.score_adv[-1]
        if not genuine or not impostor:
            continue
        labels = np.r_[np.ones(len(genuine)), np.zeros(len(impostor))]
        scores = -np.r_[genuine, impostor]
        fpr, tpr, _ = roc_curve(labels, scores)
        curves.append(AttackedRoc(label=f"{family.upper()} @ {dodge.epsilon_labels[-1]}",
                                  fpr=fpr.tolist(), tpr=tpr.tolist(),
                                  auc=float(roc_auc_score(labels, scores))))
    return curves


def _cell(atk: AttackUnit, target: str, victim: str) -> Rate | None:
    """``target``'s success on ``atk``'s chips at the largest budget; a source's own cell is
    its white-box success, a member of an ensemble source has none."""
    if target in atk.transfer:
        return atk.transfer[target].success[-1]
    return atk.success[-1] if [target] == (atk.surrogates or [victim]) else None


def transfer_matrix(results: Results) -> RateMatrix:
    victim = results.models.victim
    targets = [victim, *results.models.others]
    rows: list[str] = []
    values: list[list[Rate | None]] = []
    for atk in results.attacks:
        source = f" (source {'+'.join(atk.surrogates)})" if atk.surrogates else ""
        rows.append(f"{atk.attack.upper()} {atk.norm} {atk.goal} @ "
                    f"{atk.epsilon_labels[-1]}{source}")
        values.append([_cell(atk, t, victim) for t in targets])
    for goal in dict.fromkeys(a.goal for a in results.attacks):
        base = next((a for a in results.attacks if a.goal == goal and not a.surrogates
                     and a.n), None)
        if base is not None:  # the baseline: each target's failures without any attack
            rows.append(f"no attack ({goal}): clean failures")
            baseline: list[Rate | None] = [base.clean_success]
            values.append(baseline + [base.transfer[t].clean_success if t in base.transfer
                                      else None for t in targets[1:]])
    return RateMatrix(source=victim, targets=targets, rows=rows, values=values,
                      epsilon_label="each attack's largest budget (row label)")


def source_target_matrices(results: Results) -> list[RateMatrix]:
    """Per attack and goal run from several sources: rows = sources (the victim, each other
    model, leave-one-out ensembles), columns = every model, at the largest budget."""
    victim = results.models.victim
    targets = [victim, *results.models.others]
    groups: dict[tuple[str, str, str], list[AttackUnit]] = {}
    for atk in results.attacks:
        groups.setdefault((atk.attack, atk.norm, atk.goal), []).append(atk)
    matrices = []
    for (name, norm, goal), units in groups.items():
        if len(units) < 2:
            continue
        label = f"{name.upper()} {norm} {goal} @ {units[0].epsilon_labels[-1]}"
        matrices.append(RateMatrix(
            source=label, targets=targets,
            rows=["+".join(atk.surrogates or [victim]) for atk in units],
            values=[[_cell(atk, t, victim) for t in targets] for atk in units],
            slug=f"{name}-{norm}-{goal}",
            title=f"{label}: rows = source, columns = target"))
    return matrices


def verdicts(results: Results) -> list[Verdict]:
    """One row per threat at its largest budget, kind by kind: victim attacks, defenses
    (worst case), fusions (white-box) and detectors (adaptive, unflagged)."""
    return [row for kind in UNIT_KINDS for row in kind.verdicts(results)]


def executive_summary(results: Results) -> Summary:
    """Short sentences, kind by kind, and the headline pick per goal."""
    sentences = [s for kind in UNIT_KINDS for s in kind.sentences(results)]
    headline: dict[str, HeadlinePick] = {}
    for goal in PHRASES:
        picked = pick(results.attacks, goal)
        if picked is not None:
            atk, i = picked
            headline[goal] = HeadlinePick(atk.attack, atk.epsilons[i], atk.success[i],
                                          {t: row.success[i] for t, row in atk.transfer.items()})
    return Summary(verdicts=verdicts(results), sentences=sentences, headline=headline)


def methodology(results: Results) -> list[str]:
    data = results.dataset
    lines = [
        "Faces are aligned as dlib does (5-point landmarks, 150x150 chip with padding 0.25); "
        "every model reads this canonical chip and resamples it internally.",
        f"Clean verification on {data.name} ({data.root}, {data.layout} layout): "
        f"{data.protocol}; {_pairs_text(data)}; the threshold is chosen on the other folds and "
        "accuracy measured on the held-out fold. Pairs with an unusable image are dropped "
        f"({data.pairs_dropped} here).",
        f"Faces are found with dlib's {data.detector} detector ({_detector_text(data)}); "
        f"{len(data.skipped)} image(s) had no usable face and are listed under Skipped images.",
    ]
    ident = data.identification
    if ident is not None:
        lines.append(
            f"Closed-set identification over {ident.identities} identities of {data.name}: "
            f"{ident.enrolment_images} enrolment and {ident.probe_images} probe images (split "
            f"from {ident.source}); classifier: {ident.head}.")
    lines += [
        "Attacks use each model's own operating threshold (dlib: Euclidean distance 0.6) and "
        "are run only on samples the victim decides correctly; success is the fraction of "
        "those samples for which the goal is met, given with its count and a 95% Wilson "
        "interval (samples under 30 are labelled small). Perturbations are clipped to the "
        "budget and to [0, 1].",
        "Transfer: the adversarial chips crafted on the victim are scored unchanged by every "
        "other model against that model's own references and threshold.",
        f"Seed {results.seed}; every unit seeds its own generator from the run seed and its "
        "name, so resumed runs reproduce uninterrupted ones.",
    ]
    lines += [text for present, text in ((results.fusions, FUSION_METHOD),
                                         (results.detectors, DETECTOR_METHOD),
                                         (results.defenses, DEFENSE_METHOD)) if present]
    return lines


FUSION_METHOD = (
    "Fusion: several verification models become one verifier that accepts when the mean of "
    "distance/threshold over the members is <= 1; it is attacked white-box as a whole "
    "(adaptive) and with chips crafted on each member alone (transfer), every budget at full "
    "strength.")
DETECTOR_METHOD = (
    "Detectors: correctly identified probes are split by image into train (40%), validation "
    "(30%) and test (30%); BIM, CW-L2 and MI-FGSM attack each, untargeted and targeted, and "
    "only successful adversarials are kept. Thresholds come from the validation clean probes, "
    "every figure from the test split. The adaptive attack (PGD) adds a hinge on the "
    "detector's score (exact gradient, BPDA through bit-depth reduction, or a fitted surrogate "
    "for the Isolation Forest) and is judged by the real detector.")
DEFENSE_METHOD = (
    "Defenses are judged under a naive attack (crafted on the undefended model), a direct one "
    "(autograd through the defense), an adaptive one (BPDA gradients through the transform "
    "and EOT over its randomness) and, when configured, a black-box one; the worst case counts "
    "a sample fooled by any of them.")


def _pairs_text(data: DatasetFacts) -> str:
    if data.pairs_generated:
        return ("pairs generated with a seeded generator, identities disjoint across folds "
                "(written to protocol/pairs.txt)")
    return f"pairs read from {data.pairs_source}"


def _detector_text(data: DatasetFacts) -> str:
    found = ", ".join(f"{n} by {name.upper()}" for name, n in data.detectors.items())
    many = data.multiple_faces
    return (found or "no counts") + (f"; {many} image(s) showed several faces, the largest "
                                     "was used" if many else "")


def add_derived(results: Results) -> Results:
    """``results`` with every derived block filled in."""
    return dataclasses.replace(
        results, accuracy_curves=accuracy_curves(results), roc_attacked=attacked_rocs(results),
        transfer_matrix=transfer_matrix(results),
        source_target=source_target_matrices(results), methodology=methodology(results),
        summary=executive_summary(results))
