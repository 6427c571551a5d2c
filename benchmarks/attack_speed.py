"""Attack speed: facerobust vs IBM ART vs torchattacks on the dlib model + identification head.

Run: ``FACEROBUST_DATA=/work/shared/data .venv/bin/python benchmarks/attack_speed.py``
(options: ``--n 32 --steps 10 --cw-steps 10 --minimal-n 16 --rounds 5``). Every measurement
runs once per round, rounds interleaved; the table shows medians and spreads, and each ratio is
the median of its per-round ratios. Prints a table and ends with
``RESULT pgd_vs_art=.. pgd_vs_torchattacks=.. cw_vs_art=.. overhead=.. fgsm_sweep8=..
minimal_eps_passes=.. fgsm_vs_torchattacks=.. fgsm_judged_vs_torchattacks=..
fgsm_judged_vs_torchattacks_judged=.. cw_vs_torchattacks=.. pgd_pass_ratio=..`` (speed
ratios > 1: facerobust is faster).

Like-for-like keys: ``fgsm_vs_torchattacks`` times :meth:`FGM.craft` (adversarials only, judged
outside the timing like the peers'); ``fgsm_judged_vs_torchattacks`` times the full call, which
also returns the success mask (one more forward on the rows the clean forward did not break);
``fgsm_judged_vs_torchattacks_judged`` sets it beside torchattacks plus the one forward that
gives the same mask (the same work: a success mask needs a forward of the adversarials).
``cw_vs_torchattacks`` runs CW with ``abort_scope="batch"``, the abort rule torchattacks (and
Carlini's reference code) use; the default per-sample rule is timed too (``cw_vs_art``), with
its passes and mean L2 beside torchattacks'. ``pgd_pass_ratio`` = PGD-k without early stopping:
its passes (forward+backward or forward, per sample) over k per sample.

Setup: 2 CPU threads and, as the CLI does, :func:`facerobust.allocator.keep_freed_memory`
for the whole process (every library gains from it alike; ``FACEROBUST_MALLOC=default`` turns
it off); dlib-resnet + a closed-set head over LFW people with >= 10 images
(the experiment core's identification split and ``facerobust.models.heads`` cosine head);
``--n`` aligned probe chips the head classifies correctly; goal = misclassification. Every
library gets the same frozen model (parameters requires_grad=False, which also spares ART and
torchattacks the weight gradients) and the same settings (no random start, same step size,
steps, CW c/steps/lr). facerobust's default early stopping is reported as the headline PGD
number, and PGD without early stopping is measured too (``early_stop=False``: the same
per-sample work as the other libraries). "Equal success" = every library's success rate is
printed beside its time (ART and torchattacks judged by one forward outside the timing; ours
is in the timing, since our attacks return the success mask); a ratio only counts when those
rates agree. The minimal-epsilon ratio counts model passes (forward or forward+backward, per
sample) of the default search against RobFR's linear(5)+binary(10) search at the same
resolution; both medians are printed, the default's must be equal or smaller.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from torch import nn

from facerobust import models
from facerobust.allocator import keep_freed_memory
from facerobust.attacks import (
    FGSM,
    PGD,
    PLAIN_BISECTION,
    CarliniWagnerL2,
    Misclassification,
    minimal_epsilon,
    robfr_search,
)
from facerobust.eval.tasks import embed


@torch.no_grad()
def build_classifier(enrol: int) -> tuple[nn.Module, torch.Tensor, torch.Tensor, str]:
    """dlib + a cosine head over every LFW person with >= 10 images (the experiment core's
    identification split: ``enrol`` enrolment images and one probe each)."""
    from facerobust.data import resolve_dataset
    from facerobust.data.chips import load_chips
    from facerobust.data.lfw import LFWPairs
    from facerobust.eval.tasks import identity_split, rows_for
    from facerobust.models.heads import IdentificationModel, train_head

    net = models.load("dlib-resnet")
    split = identity_split(LFWPairs(resolve_dataset("lfw-gray")).people(), identities=10**6,
                           images=enrol + 1, gallery=enrol, min_images=10, seed=0)
    chips = load_chips([*split.train_paths, *split.probe_paths], progress=True)
    tr_rows, tr_labels = rows_for(split.train_paths, split.train_labels, chips.index)
    te_rows, te_labels = rows_for(split.probe_paths, split.probe_labels, chips.index)
    head = train_head(embed(net, chips.chips[torch.as_tensor(tr_rows)]),
                      torch.as_tensor(tr_labels), n_classes=len(split.names))
    clf = IdentificationModel(net, head, names=split.names).eval().requires_grad_(False)
    return (clf, chips.chips[torch.as_tensor(te_rows)], torch.as_tensor(te_labels),
            f"facerobust.models.heads cosine head, {len(split.names)} identities, "
            f"{len(tr_rows)} enrolment images")


class Rows(list):  # type: ignore[type-arg]
    """Table rows, each also printed as soon as it is measured (progress for long runs)."""

    def append(self, row: tuple[str, str, float, str]) -> None:  # type: ignore[override]
        super().append(row)
        print(f"  measured: {row[0]} | {row[1]} | {row[2]:.2f} s | {row[3]}", flush=True)


def timed(fn: Callable[[], Any], repeat: int = 1) -> tuple[float, Any]:
    """Best (minimum) wall time over ``repeat`` runs (the machine is shared) and the output."""
    best, out = float("inf"), None
    for _ in range(repeat):
        t = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t)
    return best, out


def rate(model: nn.Module, adv: Any, y: torch.Tensor) -> float:
    with torch.no_grad():
        pred = embed(model, torch.as_tensor(np.asarray(adv), dtype=torch.float32)).argmax(1)
    return float((pred != y).float().mean())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=32)
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--cw-steps", type=int, default=5)
    ap.add_argument("--minimal-n", type=int, default=16)
    ap.add_argument("--minimal-steps", type=int, default=5)
    ap.add_argument("--enrol", type=int, default=5, help="enrolment images per identity")
    ap.add_argument("--fgsm-only", action="store_true",
                    help="time only the FGSM jobs (RESULT with the three fgsm_* keys)")
    ap.add_argument("--rounds", type=int, default=5,
                    help="interleaved rounds; medians and spreads are reported (shared CPU)")
    args = ap.parse_args()
    torch.set_num_threads(2)
    print(f"keep_freed_memory applied: {keep_freed_memory()}")
    import torchattacks
    from art.attacks.evasion import (
        CarliniL2Method,
        FastGradientMethod,
        ProjectedGradientDescentPyTorch,
    )
    from art.estimators.classification import PyTorchClassifier

    clf, xs, ys, head = build_classifier(args.enrol)
    with torch.no_grad():
        ok = embed(clf, xs).argmax(1) == ys
    x, y = xs[ok][: args.n], ys[ok][: args.n]
    n_cls = int(clf(x[:1]).shape[1])
    crit = Misclassification(y)
    top1 = float(ok.float().mean())
    print(f"model: dlib-resnet + {head}; {len(x)} probes, clean top-1 {top1:.3f}")
    art = PyTorchClassifier(model=clf, loss=nn.CrossEntropyLoss(), input_shape=(3, 150, 150),
                            nb_classes=n_cls, clip_values=(0.0, 1.0))
    xn, yn = x.numpy(), y.numpy()
    rows = Rows()

    def fb() -> None:
        xr = x.clone().requires_grad_(True)
        (g,) = torch.autograd.grad(nn.functional.cross_entropy(clf(xr), y), xr)

    fb()  # warm-up; timed in the rounds below, beside the attacks

    def judged(adv: torch.Tensor) -> torch.Tensor:
        """A peer's adversarials with the success mask ours returns: one no-grad forward."""
        with torch.no_grad():
            crit.is_adversarial(clf(adv))
        return adv

    eps, alpha, k = 1 / 255, 0.25 / 255, args.steps
    c, lr, cs = 1.0, 0.01, args.cw_steps
    m, mk = args.minimal_n, args.minimal_steps
    sub = crit.subset(torch.arange(m))
    sweep = [i / 255 for i in range(1, 9)]
    pgd = PGD(steps=k, abs_stepsize=alpha, random_start=False)
    pgd_full = PGD(steps=k, abs_stepsize=alpha, random_start=False, early_stop=False)
    cw = CarliniWagnerL2(binary_search_steps=1, steps=cs, lr=lr, initial_const=c)
    cw_batch = cw.with_options(abort_scope="batch")
    jobs: dict[str, tuple[str, str, Callable[[], Any]]] = {
        "fb": ("forward+backward", "torch", fb),
        "fgsm": ("FGSM 1/255", "facerobust", lambda: FGSM()(clf, x, crit, epsilons=[eps])),
        "fgsm_art": ("FGSM 1/255", "ART", lambda: FastGradientMethod(
            art, eps=eps, batch_size=len(x)).generate(xn, y=yn)),
        "fgsm_ta": ("FGSM 1/255", "torchattacks", lambda: torchattacks.FGSM(clf, eps=eps)(x, y)),
        "fgsm_ta_judged": ("FGSM 1/255", "torchattacks + one judging forward",
                           lambda: judged(torchattacks.FGSM(clf, eps=eps)(x, y))),
        "fgsm_craft": ("FGSM 1/255", "facerobust craft (no success)",
                       lambda: FGSM().craft(clf, x, crit, epsilons=[eps])[0]),
        "sweep8": ("FGSM sweep 1..8/255", "facerobust",
                   lambda: FGSM()(clf, x, crit, epsilons=sweep)),
        "pgd_full": (f"PGD-Linf {k} steps", "facerobust (no early stop)",
                     lambda: pgd_full(clf, x, crit, epsilons=[eps])),
        "pgd": (f"PGD-Linf {k} steps", "facerobust (early stop)",
                lambda: pgd(clf, x, crit, epsilons=[eps])),
        "pgd_art": (f"PGD-Linf {k} steps", "ART", lambda: ProjectedGradientDescentPyTorch(
            art, norm=np.inf, eps=eps, eps_step=alpha, max_iter=k, num_random_init=0,
            batch_size=len(x), verbose=False).generate(xn, y=yn)),
        "pgd_ta": (f"PGD-Linf {k} steps", "torchattacks", lambda: torchattacks.PGD(
            clf, eps=eps, alpha=alpha, steps=k, random_start=False)(x, y)),
        "cw": (f"CW-L2 {cs} steps c={c}", "facerobust (per-sample abort)",
               lambda: cw(clf, x, crit, epsilons=[float("inf")])),
        "cw_batch": (f"CW-L2 {cs} steps c={c}", "facerobust (batch abort)",
                     lambda: cw_batch(clf, x, crit, epsilons=[float("inf")])),
        "cw_art": (f"CW-L2 {cs} steps c={c}", "ART", lambda: CarliniL2Method(
            art, confidence=0.0, learning_rate=lr, binary_search_steps=1, max_iter=cs,
            initial_const=c, batch_size=len(x), verbose=False).generate(xn, y=yn)),
        "cw_ta": (f"CW-L2 {cs} steps c={c}", "torchattacks",
                  lambda: torchattacks.CW(clf, c=c, kappa=0, steps=cs, lr=lr)(x, y)),
        "min": (f"min-eps PGD-{mk}, {m} probes", "facerobust (default search)",
                lambda: minimal_epsilon(clf, x[:m], sub, attack=PGD(
                    steps=mk, random_start=False), max_epsilon=8 / 255)),
        "min_robfr": (f"min-eps PGD-{mk}, {m} probes", "RobFR linear(5)+binary(10)",
                      lambda: robfr_search(clf, x[:m], sub, attack=PGD(
                          steps=mk, random_start=False, early_stop=False),
                          max_epsilon=8 / 255)),
        "min_plain": (f"min-eps PGD-{mk}, {m} probes", "facerobust plain bisection",
                      lambda: minimal_epsilon(clf, x[:m], sub, attack=PGD(
                          steps=mk, random_start=False), max_epsilon=8 / 255,
                          search=PLAIN_BISECTION)),
    }
    if args.fgsm_only:
        jobs = {name: job for name, job in jobs.items() if name.startswith("fgsm")}
    # interleaved rounds: every job once per round, so a noisy spell hits all of them alike;
    # each ratio is taken within a round, then the median over rounds is reported
    times: dict[str, list[float]] = {name: [] for name in jobs}
    outputs: dict[str, Any] = {}
    for r in range(args.rounds):
        for name, (_, _, fn) in jobs.items():
            sec, outputs[name] = timed(fn)
            times[name].append(sec)
        print(f"  round {r + 1}/{args.rounds} done", flush=True)

    def med(name: str) -> float:
        return statistics.median(times[name])

    def ratio(num: str, den: str) -> tuple[float, float, float]:
        values = [a / b for a, b in zip(times[num], times[den], strict=True)]
        return statistics.median(values), min(values), max(values)

    if args.fgsm_only:
        for name in jobs:
            print(f"{jobs[name][1]:<40} median {med(name):.3f} s "
                  f"[{min(times[name]):.3f}-{max(times[name]):.3f}]")
        print(f"RESULT fgsm_vs_torchattacks={ratio('fgsm_ta', 'fgsm_craft')[0]:.2f} "
              f"fgsm_judged_vs_torchattacks={ratio('fgsm_ta', 'fgsm')[0]:.2f} "
              f"fgsm_judged_vs_torchattacks_judged={ratio('fgsm_ta_judged', 'fgsm')[0]:.2f}")
        return

    def note(name: str) -> str:
        out = outputs[name]
        if out is None:  # the plain forward+backward
            return f"{len(x)} chips"
        l2 = ""
        if name.startswith("cw"):
            adv = torch.as_tensor(np.asarray(out if isinstance(out, (torch.Tensor, np.ndarray))
                                             else out.clipped[0]))
            l2 = f", mean L2 {float((adv - x).flatten(1).norm(dim=1).mean()):.3f}"
        if isinstance(out, (torch.Tensor, np.ndarray)):  # ART / torchattacks adversarials
            return f"success {rate(clf, out, y):.3f}{l2}"
        if hasattr(out, "median"):  # minimal-epsilon results
            return f"{out.passes} passes, median {out.median() * 255:.4f}/255"
        return f"success {out.success_rate()[0]:.3f}, {out.passes} passes{l2}"

    for name, (task, lib, _) in jobs.items():
        spread = f"[{min(times[name]):.2f}-{max(times[name]):.2f}]"
        rows.append((task, lib, med(name), f"{note(name)}; spread {spread} s"))
    t_f, t_s8, t_p, t_pn, t_pa, t_pt = (med(n) for n in ("fgsm", "sweep8", "pgd", "pgd_full",
                                                         "pgd_art", "pgd_ta"))
    t_c, t_ca, t_ct, t_fa, t_ft = (med(n) for n in ("cw", "cw_art", "cw_ta", "fgsm_art",
                                                    "fgsm_ta"))
    ours, base, plain = outputs["min"], outputs["min_robfr"], outputs["min_plain"]
    for label, (num, den) in {"PGD vs ART": ("pgd_art", "pgd"),
                              "PGD vs torchattacks": ("pgd_ta", "pgd"),
                              "FGSM sweep / one eps": ("sweep8", "fgsm")}.items():
        mid, lo, hi = ratio(num, den)
        print(f"{label}: median {mid:.2f}x over {args.rounds} rounds (spread {lo:.2f}-{hi:.2f})")

    width = max(len(r[0]) for r in rows)
    lib_w = max(len(r[1]) for r in rows)
    print(f"\n{'task':<{width}}  {'library':<{lib_w}}  {'seconds':>8}  notes")
    for task, lib, sec, note in rows:
        print(f"{task:<{width}}  {lib:<{lib_w}}  {sec:8.2f}  {note}")
    overhead = ratio("pgd_full", "fb")[0] / k  # per round: a noisy spell hits both alike
    pass_ratio = k * len(x) / outputs["pgd"].passes
    print(f"\nPGD pass count: ART {k} x {len(x)} = {k * len(x)} forward+backward passes, ours "
          f"{outputs['pgd'].passes} (early stop, success checks included): {pass_ratio:.2f}x "
          f"fewer; a larger speed-up at equal success needs a cheaper pass (ours "
          f"{t_pa / t_p / pass_ratio:.2f}x ART's per-pass speed)")
    print(f"\nPGD speed-up vs ART: {t_pa / t_p:.2f}x (early stop), "
          f"{t_pa / t_pn:.2f}x (no early stop)")
    print(f"PGD speed-up vs torchattacks: {t_pt / t_p:.2f}x (early stop), "
          f"{t_pt / t_pn:.2f}x (no early stop)")
    print(f"FGSM vs ART {t_fa / t_f:.2f}x, vs torchattacks {t_ft / t_f:.2f}x (with success); "
          f"craft vs torchattacks {ratio('fgsm_ta', 'fgsm_craft')[0]:.2f}x; CW vs torchattacks "
          f"{t_ct / t_c:.2f}x (per-sample abort), {ratio('cw_ta', 'cw_batch')[0]:.2f}x (batch)")
    pgd_pass_ratio = outputs["pgd_full"].passes / (k * len(x))
    print(f"PGD-{k} without early stop: {outputs['pgd_full'].passes} passes = "
          f"{pgd_pass_ratio:.3f} x {k} per sample")
    print(f"overhead PGD-{k} (no early stop) / ({k} x forward+backward) = {overhead:.3f}")
    print(f"RESULT pgd_vs_art={ratio('pgd_art', 'pgd')[0]:.2f} "
          f"pgd_vs_torchattacks={ratio('pgd_ta', 'pgd')[0]:.2f} "
          f"cw_vs_art={ratio('cw_art', 'cw')[0]:.2f} overhead={overhead:.3f} "
          f"fgsm_sweep8={ratio('sweep8', 'fgsm')[0]:.2f} "
          f"minimal_eps_passes={ours.passes / base.passes:.3f} "
          f"fgsm_vs_torchattacks={ratio('fgsm_ta', 'fgsm_craft')[0]:.2f} "
          f"fgsm_judged_vs_torchattacks={ratio('fgsm_ta', 'fgsm')[0]:.2f} "
          f"fgsm_judged_vs_torchattacks_judged={ratio('fgsm_ta_judged', 'fgsm')[0]:.2f} "
          f"cw_vs_torchattacks={ratio('cw_ta', 'cw_batch')[0]:.2f} "
          f"pgd_pass_ratio={pgd_pass_ratio:.3f}")
    print(f"minimal-epsilon medians: default {ours.median() * 255:.4f}/255, RobFR "
          f"{base.median() * 255:.4f}/255 (plain cold bisection: {plain.passes / base.passes:.3f}"
          f" of RobFR's passes, median {plain.median() * 255:.4f}/255)")


if __name__ == "__main__":
    main()
