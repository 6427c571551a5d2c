"""Derived figures for results.json: accuracy curves, attacked ROCs, transfer matrix, the
plain-words executive summary and the methodology. Computed once here so the report only
renders. Rates stay ``{"k", "n", "rate", "ci95"}`` objects."""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.metrics import roc_auc_score, roc_curve

from facerobust.attacks.threat import format_epsilon, threat_for
from facerobust.eval.stats import Rate

NO_ATTACK = {"k": 0, "n": 0, "rate": 0.0, "ci95": [0.0, 0.0]}


def rate_text(rate: dict[str, Any]) -> str:
    return Rate.from_dict(rate).text()


def _by_family(attacks: list[dict[str, Any]]) -> dict[str, dict[str, dict[str, Any]]]:
    families: dict[str, dict[str, dict[str, Any]]] = {}
    for atk in attacks:
        if atk.get("surrogates"):  # crafted on other models: not the victim's curves
            continue
        families.setdefault(f"{atk['attack']}-{atk['norm']}", {})[atk["goal"]] = atk
    return families


def _still_right(clean_rates: list[float], successes: list[list[dict[str, Any]]],
                 i: int) -> tuple[float, float, float]:
    """Mean over classes of ``clean x (1 - success)`` at epsilon ``i``, with the band spanned
    by the success rates' 95% intervals."""
    mid, low, high = [], [], []
    for clean, column in zip(clean_rates, successes, strict=True):
        s = column[i]
        mid.append(clean * (1 - s["rate"]))
        low.append(clean * (1 - s["ci95"][1]))
        high.append(clean * (1 - s["ci95"][0]))
    return float(np.mean(mid)), float(np.mean(low)), float(np.mean(high))


def accuracy_curves(results: dict[str, Any]) -> list[dict[str, Any]]:
    """Accuracy under attack vs epsilon (eps 0 = clean at the operating threshold).

    Attacks run on samples the victim decides correctly, so accuracy under attack is
    ``clean rate x (1 - success)`` per class (genuine under dodging, impostor under
    impersonation), averaged; ``low``/``high`` come from the success rates' 95% intervals.
    """
    clean = results["clean"][results["models"]["victim"]]
    curves = []
    for family, goals in _by_family(results["attacks"]).items():
        first = next(iter(goals.values()))
        eps = first["epsilons"]
        jobs = []
        if "dodging" in goals or "impersonation" in goals:
            jobs.append(("verification",
                         [clean["genuine_accept"]["rate"], clean["impostor_reject"]["rate"]],
                         [goals.get(g, {}).get("success", [NO_ATTACK] * len(eps))
                          for g in ("dodging", "impersonation")]))
        if "untargeted" in goals and clean.get("identification_top1"):
            jobs.append(("identification", [clean["identification_top1"]["rate"]],
                         [goals["untargeted"]["success"]]))
        for task, clean_rates, successes in jobs:
            points = [_still_right(clean_rates, successes, i) for i in range(len(eps))]
            start = float(np.mean(clean_rates))
            curves.append({"task": task, "label": family.upper(), "norm": first["norm"],
                           "epsilons": [0.0, *eps], "accuracy": [start, *[p[0] for p in points]],
                           "low": [start, *[p[1] for p in points]],
                           "high": [start, *[p[2] for p in points]]})
    return curves


def attacked_rocs(results: dict[str, Any]) -> list[dict[str, Any]]:
    """ROC on the attack sample: genuine pairs under dodging vs impostors under impersonation,
    at each family's largest epsilon."""
    curves = []
    for family, goals in _by_family(results["attacks"]).items():
        if "dodging" not in goals or "impersonation" not in goals:
            continue
        dodge, imp = goals["dodging"], goals["impersonation"]
        genuine, impostor = dodge["score_adv"][-1], imp["score_adv"][-1]
        if not genuine or not impostor:
            continue
        labels = np.r_[np.ones(len(genuine)), np.zeros(len(impostor))]
        scores = -np.r_[genuine, impostor]
        fpr, tpr, _ = roc_curve(labels, scores)
        curves.append({"label": f"{family.upper()} @ {dodge['epsilon_labels'][-1]}",
                       "fpr": fpr.tolist(), "tpr": tpr.tolist(),
                       "auc": float(roc_auc_score(labels, scores))})
    return curves


def transfer_matrix(results: dict[str, Any]) -> dict[str, Any]:
    victim = results["models"]["victim"]
    targets = [victim, *results["models"]["others"]]
    rows, values = [], []
    for atk in results["attacks"]:
        source = f" (source {'+'.join(atk['surrogates'])})" if atk.get("surrogates") else ""
        rows.append(f"{atk['attack'].upper()} {atk['norm']} {atk['goal']} @ "
                    f"{atk['epsilon_labels'][-1]}{source}")
        cells = []
        for t in targets:
            if t in atk["transfer"]:
                cells.append(atk["transfer"][t]["success"][-1])
            elif [t] == (atk.get("surrogates") or [victim]):
                cells.append(atk["success"][-1])
            else:
                cells.append(None)  # a surrogate of this row: not a transfer target
        values.append(cells)
    for goal in dict.fromkeys(a["goal"] for a in results["attacks"]):
        base = next((a for a in results["attacks"] if a["goal"] == goal
                     and not a.get("surrogates") and a["n"]), None)
        if base is not None:  # the baseline: each target's failures without any attack
            rows.append(f"no attack ({goal}): clean failures")
            values.append([base["clean_success"]] + [
                base["transfer"][t]["clean_success"] if t in base["transfer"] else None
                for t in targets[1:]])
    return {"source": victim, "targets": targets, "rows": rows, "values": values,
            "epsilon_label": "each attack's largest budget (row label)"}


def source_target_matrices(results: dict[str, Any]) -> list[dict[str, Any]]:
    """Per attack and goal run from several sources: rows = sources (the victim, each other
    model, leave-one-out ensembles), columns = every model, at the largest budget; a source's
    own cell is its white-box success, a member of an ensemble source has none."""
    victim = results["models"]["victim"]
    targets = [victim, *results["models"]["others"]]
    groups: dict[tuple[str, str, str], list[dict[str, Any]]] = {}
    for atk in results["attacks"]:
        groups.setdefault((atk["attack"], atk["norm"], atk["goal"]), []).append(atk)
    matrices = []
    for (name, norm, goal), units in groups.items():
        if len(units) < 2:
            continue
        rows, values = [], []
        for atk in units:
            sources = atk.get("surrogates") or [victim]
            rows.append("+".join(sources))
            values.append([atk["transfer"][t]["success"][-1] if t in atk["transfer"] else
                           atk["success"][-1] if [t] == sources else None for t in targets])
        matrices.append({"source": f"{name.upper()} {norm} {goal} @ "
                                   f"{units[0]['epsilon_labels'][-1]}",
                         "targets": targets, "rows": rows, "values": values,
                         "slug": f"{name}-{norm}-{goal}",
                         "title": f"{name.upper()} {norm} {goal} @ "
                                  f"{units[0]['epsilon_labels'][-1]}: rows = source, "
                                  "columns = target"})
    return matrices


def _pick(attacks: list[dict[str, Any]], goal: str) -> tuple[dict[str, Any], int] | None:
    """Most successful attack for ``goal`` at its threat's headline budget (or nearest below;
    Linf 2/255; threats without a headline budget, such as L2, are not quoted)."""
    best = None
    for atk in attacks:
        headline = threat_for(atk["norm"]).headline_epsilon
        if atk["goal"] != goal or headline is None or atk["n"] == 0 or atk.get("surrogates"):
            continue
        idx = [i for i, e in enumerate(atk["epsilons"]) if e <= headline + 1e-12]
        i = idx[-1] if idx else 0
        if best is None or atk["success"][i]["rate"] > best[0]["success"][best[1]]["rate"]:
            best = (atk, i)
    return best


PHRASES = {"dodging": "evades recognition as themself (dodging)",
           "impersonation": "impersonates a chosen enrolled person",
           "untargeted": "gets misidentified as someone else",
           "targeted": "gets identified as a chosen person"}


def _attack_sentence(atk: dict[str, Any], i: int, goal: str, victim: str) -> str:
    text = (f"With a perturbation of {atk['epsilon_labels'][i]} per pixel, an attacker "
            f"{PHRASES[goal]} in {rate_text(atk['success'][i])} of attempts against {victim} "
            f"({atk['attack'].upper()}).")
    if atk["transfer"]:
        parts = ", ".join(
            f"{t} in {rate_text(row['success'][i])} (already "
            f"{100 * row['clean_success']['rate']:.1f}% without perturbation)"
            for t, row in atk["transfer"].items())
        text += f" The same images, built on {victim}, fool {parts}."
    return text


def _defense_sentence(d: dict[str, Any]) -> str:
    worst = d["worst_case"][-1]
    return (f"Defense {d['name']} ({d['goal']}): at {d['epsilon_labels'][-1]} a naive attack "
            f"succeeds in {rate_text(d['naive'][-1])}, an adaptive one in "
            f"{rate_text(d['adaptive'][-1])}, the worst of all attacks run in "
            f"{rate_text(worst)} (undefended {100 * d['undefended'][-1]['rate']:.1f}%); clean "
            f"{d['clean_measure']} {100 * d['clean']['rate']:.1f}% "
            f"(without the defense {100 * d['clean_undefended']['rate']:.1f}%).")


def _fusion_sentence(f: dict[str, Any]) -> str:
    best = max(f["from_member"], key=lambda m: f["from_member"][m][-1]["rate"])
    return (f"Fusing {' + '.join(f['models'])} into one verifier ({f['goal']}): at "
            f"{f['epsilon_labels'][-1]} the white-box attack on the fusion succeeds in "
            f"{rate_text(f['adaptive'][-1])}, chips made on {best} alone in "
            f"{rate_text(f['from_member'][best][-1])}; clean decisions "
            f"{100 * f['clean']['rate']:.1f}%.")


def _auc_text(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


def _detector_sentences(unit: dict[str, Any]) -> list[str]:
    out = []
    for d in unit["results"]:
        if d.get("macro_auc") is None:
            continue
        text = (f"Detector {d['label']} on {unit['model']}: Macro-AUC {d['macro_auc']:.3f} over "
                f"{len(d['per_attack'])} attacks (held-out identities "
                f"{_auc_text(d.get('macro_auc_heldout_identities'))}), "
                f"{rate_text(d['clean_fpr'])} of clean probes flagged")
        worst = max(d["adaptive"], key=lambda a: (a["epsilon"], a["adaptive_evades"]["rate"]),
                    default=None)
        if worst is not None:
            text += (f"; at {worst['epsilon_label']} ({worst['goal']}) the adaptive attack fools "
                     f"the model unflagged in {rate_text(worst['adaptive_evades'])} (naive "
                     f"{rate_text(worst['naive_evades'])})")
        out.append(text + ".")
    return out


def executive_summary(results: dict[str, Any]) -> dict[str, Any]:
    victim = results["models"]["victim"]
    clean = results["clean"][victim]
    sentences = [
        f"On {results['dataset']['name']} ({clean['n_pairs']} verification pairs), {victim} "
        f"verifies faces with {100 * clean['accuracy']:.1f}% accuracy "
        f"(+- {100 * clean['accuracy_std']:.1f} over {clean['n_folds']} folds) and accepts "
        f"{rate_text(clean['tar_at_far'])} of genuine users when {100 * clean['far']:g}% of "
        "impostors are let in."]
    headline: dict[str, Any] = {}
    for goal in PHRASES:
        picked = _pick(results["attacks"], goal)
        if picked is None:
            continue
        atk, i = picked
        sentences.append(_attack_sentence(atk, i, goal, victim))
        headline[goal] = {"attack": atk["attack"], "epsilon": atk["epsilons"][i],
                          "success": atk["success"][i],
                          "transfer": {t: row["success"][i] for t, row in atk["transfer"].items()}}
    minimal = results.get("minimal")
    if minimal and minimal.get("median") is not None:
        sentences.append(f"Half of the {minimal['n']} attacked samples fall to a "
                         f"{minimal['norm']} perturbation of at most "
                         f"{format_epsilon(minimal['median'], minimal['norm'])} "
                         f"({minimal['attack'].upper()}, {minimal['goal']}).")
    sentences += [_defense_sentence(d) for d in results.get("defenses", [])]
    sentences += [_fusion_sentence(f) for f in results.get("fusions", [])]
    for unit in results.get("detectors", []):
        sentences += _detector_sentences(unit)
    return {"sentences": sentences, "headline": headline}


def methodology(results: dict[str, Any]) -> list[str]:
    cfg, data = results["config"], results["dataset"]
    lines = [
        "Faces are aligned as dlib does (5-point landmarks, 150x150 chip with padding 0.25); "
        "every model reads this canonical chip and resamples it internally.",
        f"Clean verification on {data['name']} ({data['root']}, {data.get('layout', 'lfw')} "
        f"layout): {data['protocol']}; {_pairs_text(data)}; the threshold is chosen on the "
        "other folds and accuracy measured on the held-out fold. Pairs with an unusable image "
        f"are dropped ({data['pairs_dropped']} here).",
        f"Faces are found with dlib's {data.get('detector', 'hog')} detector "
        f"({_detector_text(data)}); {len(data['skipped'])} image(s) had no usable face and "
        "are listed under Skipped images.",
    ]
    ident = data.get("identification")
    if ident:
        lines.append(
            f"Closed-set identification over {ident['identities']} identities of "
            f"{data['name']}: {ident['enrolment_images']} enrolment and "
            f"{ident['probe_images']} probe images (split from {ident['source']}); "
            f"classifier: {ident['head']}.")
    lines += [
        "Attacks use each model's own operating threshold (dlib: Euclidean distance 0.6) and "
        "are run only on samples the victim decides correctly; success is the fraction of "
        "those samples for which the goal is met, given with its count and a 95% Wilson "
        "interval (samples under 30 are labelled small). Perturbations are clipped to the "
        "budget and to [0, 1].",
        "Transfer: the adversarial chips crafted on the victim are scored unchanged by every "
        "other model against that model's own references and threshold.",
        f"Seed {cfg['run']['seed']}; every unit seeds its own generator from the run seed and "
        "its name, so resumed runs reproduce uninterrupted ones.",
    ]
    if results.get("fusions"):
        lines.append(
            "Fusion: several verification models become one verifier that accepts when the "
            "mean of distance/threshold over the members is <= 1; it is attacked white-box as "
            "a whole (adaptive) and with chips crafted on each member alone (transfer), every "
            "budget at full strength.")
    if results.get("detectors"):
        lines.append(
            "Detectors: correctly identified probes are split by image into train (40%), "
            "validation (30%) and test (30%); BIM, CW-L2 and MI-FGSM attack each, untargeted "
            "and targeted, and only successful adversarials are kept. Thresholds come from the "
            "validation clean probes, every figure from the test split. The adaptive attack "
            "(PGD) adds a hinge on the detector's score (exact gradient, BPDA through bit-depth "
            "reduction, or a fitted surrogate for the Isolation Forest) and is judged by the "
            "real detector.")
    if results.get("defenses"):
        lines.append(
            "Defenses are judged under a naive attack (crafted on the undefended model), a "
            "direct one (autograd through the defense), an adaptive one (BPDA gradients "
            "through the transform and EOT over its randomness) and, when configured, a "
            "black-box one; the worst case counts a sample fooled by any of them.")
    return lines


def _pairs_text(data: dict[str, Any]) -> str:
    if data.get("pairs_generated"):
        return ("pairs generated with a seeded generator, identities disjoint across folds "
                "(written to protocol/pairs.txt)")
    return f"pairs read from {data['pairs_source']}"


def _detector_text(data: dict[str, Any]) -> str:
    counts = data.get("detectors") or {}
    found = ", ".join(f"{n} by {name.upper()}" for name, n in counts.items())
    many = data.get("multiple_faces") or 0
    return (found or "no counts") + (f"; {many} image(s) showed several faces, the largest "
                                     "was used" if many else "")


def add_derived(results: dict[str, Any]) -> dict[str, Any]:
    """Fill in every derived block of ``results`` (in place) and return it."""
    results["accuracy_curves"] = accuracy_curves(results)
    results["roc_attacked"] = attacked_rocs(results)
    results["transfer_matrix"] = transfer_matrix(results)
    results["source_target"] = source_target_matrices(results)
    results["methodology"] = methodology(results)
    results["summary"] = executive_summary(results)
    return results
