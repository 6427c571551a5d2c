"""Derived figures for results.json: accuracy curves, attacked ROCs, transfer matrix and the
plain-words executive summary. Computed once here so the report only renders."""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.metrics import roc_auc_score, roc_curve

REFERENCE_EPS = 2 / 255


def _eps_text(eps: float, norm: str) -> str:
    return f"{eps * 255:.3g}/255" if norm == "linf" else f"{eps:.3g} (L2)"


def _by_family(attacks: list[dict[str, Any]]) -> dict[str, dict[str, dict[str, Any]]]:
    families: dict[str, dict[str, dict[str, Any]]] = {}
    for atk in attacks:
        families.setdefault(f"{atk['attack']}-{atk['norm']}", {})[atk["goal"]] = atk
    return families


def accuracy_curves(results: dict[str, Any]) -> list[dict[str, Any]]:
    """Accuracy under attack vs epsilon (eps 0 = clean at the operating threshold).

    Attacks are run on samples the victim decides correctly, so the accuracy under attack is
    ``clean rate x (1 - success)`` per class of pair, averaged over genuine and impostor pairs.
    """
    clean = results["clean"][results["models"]["victim"]]
    curves = []
    for family, goals in _by_family(results["attacks"]).items():
        first = next(iter(goals.values()))
        eps = first["epsilons"]
        if "dodging" in goals or "impersonation" in goals:
            dodge = goals.get("dodging", {}).get("success", [0.0] * len(eps))
            imp = goals.get("impersonation", {}).get("success", [0.0] * len(eps))
            gar, irr = clean["genuine_accept_rate"], clean["impostor_reject_rate"]
            acc = [(gar * (1 - d) + irr * (1 - i)) / 2 for d, i in zip(dodge, imp, strict=True)]
            curves.append({"task": "verification", "label": family.upper(), "norm": first["norm"],
                           "epsilons": [0.0, *eps], "accuracy": [(gar + irr) / 2, *acc]})
        if "untargeted" in goals and clean.get("identification_top1") is not None:
            top1 = clean["identification_top1"]
            acc = [top1 * (1 - s) for s in goals["untargeted"]["success"]]
            curves.append({"task": "identification", "label": family.upper(),
                           "norm": first["norm"], "epsilons": [0.0, *eps],
                           "accuracy": [top1, *acc]})
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
        labels = np.r_[np.ones(len(genuine)), np.zeros(len(impostor))]
        scores = -np.r_[genuine, impostor]
        fpr, tpr, _ = roc_curve(labels, scores)
        eps_text = _eps_text(dodge["epsilons"][-1], dodge["norm"])
        curves.append({"label": f"{family.upper()} @ {eps_text}",
                       "fpr": fpr.tolist(), "tpr": tpr.tolist(),
                       "auc": float(roc_auc_score(labels, scores))})
    return curves


def transfer_matrix(results: dict[str, Any]) -> dict[str, Any]:
    victim = results["models"]["victim"]
    targets = [victim, *results["models"]["others"]]
    rows, values = [], []
    for atk in results["attacks"]:
        eps = atk["epsilons"][-1]
        rows.append(f"{atk['attack'].upper()} {atk['norm']} {atk['goal']} @ "
                    f"{_eps_text(eps, atk['norm'])}")
        values.append([atk["success"][-1]] + [atk["transfer"].get(t, {}).get("success", [None])[-1]
                                              for t in targets[1:]])
    return {"source": victim, "targets": targets, "rows": rows, "values": values,
            "epsilon_label": "each attack's largest budget (row label)"}


def _pick(attacks: list[dict[str, Any]], goal: str) -> tuple[dict[str, Any], int] | None:
    """Most successful attack for ``goal`` at the reference budget (or the nearest below)."""
    best = None
    for atk in attacks:
        if atk["goal"] != goal or atk["norm"] != "linf":
            continue
        idx = [i for i, e in enumerate(atk["epsilons"]) if e <= REFERENCE_EPS + 1e-12]
        i = idx[-1] if idx else 0
        if best is None or atk["success"][i] > best[0]["success"][best[1]]:
            best = (atk, i)
    return best


def executive_summary(results: dict[str, Any]) -> dict[str, Any]:
    victim = results["models"]["victim"]
    clean = results["clean"][victim]
    sentences = [
        f"On {results['dataset']['name']} ({clean['n_pairs']} verification pairs), {victim} "
        f"verifies faces with {100 * clean['accuracy']:.1f}% accuracy and accepts "
        f"{100 * clean['tar_at_far']:.1f}% of genuine users when 0.1% of impostors are let in."]
    headline: dict[str, Any] = {}
    phrases = {"dodging": "evades recognition as themself (dodging)",
               "impersonation": "impersonates a chosen enrolled person",
               "untargeted": "gets misidentified as someone else",
               "targeted": "gets identified as a chosen person"}
    for goal, phrase in phrases.items():
        picked = _pick(results["attacks"], goal)
        if picked is None:
            continue
        atk, i = picked
        eps_text = _eps_text(atk["epsilons"][i], atk["norm"])
        rate = atk["success"][i]
        text = (f"With a perturbation of {eps_text} per pixel, an attacker {phrase} in "
                f"{100 * rate:.1f}% of attempts against {victim} ({atk['attack'].upper()}, "
                f"{atk['n']} attempts).")
        transfer = {t: row["success"][i] for t, row in atk["transfer"].items()}
        if transfer:
            parts = ", ".join(
                f"{t} in {100 * s:.1f}% (already {100 * atk['transfer'][t]['clean_success']:.1f}%"
                " without perturbation)" for t, s in transfer.items())
            text += f" The same images, built on {victim}, fool {parts}."
        sentences.append(text)
        headline[goal] = {"attack": atk["attack"], "epsilon": atk["epsilons"][i],
                          "success": rate, "transfer": transfer}
    minimal = results.get("minimal")
    if minimal and minimal.get("median") is not None:
        sentences.append(f"Half of the attacked samples fall to a {minimal['norm']} perturbation "
                         f"of at most {_eps_text(minimal['median'], minimal['norm'])} "
                         f"({minimal['attack'].upper()}, {minimal['goal']}).")
    for d in results.get("defenses", []):
        sentences.append(
            f"Defense {d['name']}: at {_eps_text(d['epsilons'][-1], 'linf')} a naive attack "
            f"succeeds {100 * d['naive'][-1]:.1f}%, an adaptive one "
            f"{100 * d['adaptive'][-1]:.1f}% (undefended {100 * d['undefended'][-1]:.1f}%); "
            f"clean accuracy {100 * d['clean']['accuracy']:.1f}%.")
    return {"sentences": sentences, "headline": headline}


def methodology(results: dict[str, Any]) -> list[str]:
    cfg = results["config"]
    return [
        "Faces are aligned as dlib does (HOG detector, 5-point landmarks, 150x150 chip with "
        "padding 0.25); every model reads this canonical chip and resamples it internally.",
        f"Clean verification follows LFW's 10-fold protocol on {results['dataset']['protocol']}: "
        "threshold chosen on 9 folds, accuracy measured on the 10th.",
        "Attacks use each model's own operating threshold (dlib: Euclidean distance 0.6) and "
        "are run only on samples the victim decides correctly; success is the fraction of "
        "those samples for which the goal is met. Perturbations are clipped to the budget and "
        "to [0, 1].",
        "Transfer: the adversarial chips crafted on the victim are scored unchanged by every "
        "other model against that model's own reference embeddings and threshold.",
        f"Seed {cfg['run']['seed']}; every unit seeds its own generator from the run seed and "
        "its name, so resumed runs reproduce uninterrupted ones.",
        "Defenses are judged under a naive attack (crafted on the undefended model) and an "
        "adaptive attack (BPDA gradients through the transform and EOT over its randomness).",
    ]


def add_derived(results: dict[str, Any]) -> dict[str, Any]:
    """Fill in every derived block of ``results`` (in place) and return it."""
    results["accuracy_curves"] = accuracy_curves(results)
    results["roc_attacked"] = attacked_rocs(results)
    results["transfer_matrix"] = transfer_matrix(results)
    results["methodology"] = methodology(results)
    results["summary"] = executive_summary(results)
    return results
