"""``facerobust attack``: attack a face model on LFW and write attack.json + examples.png.

Verification goals use LFW pairs: ``dodging`` attacks matched pairs the model accepts (the
probe must stop matching the other photo of the same person); ``impersonation`` attacks
mismatched pairs the model rejects (the probe must match the other person's descriptor).
``untargeted``/``targeted`` attack a closed-set identification head over LFW people with at
least 10 images (needs :mod:`facerobust.models.heads`).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

ATTACK_NAMES = ("fgsm", "bim", "pgd", "mifgsm", "cw", "deepfool", "square", "hsj")
GOALS = ("dodging", "impersonation", "untargeted", "targeted")


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", default="dlib-resnet", help="registered model name")
    parser.add_argument("--dataset", default="lfw", help="dataset name (lfw or lfw-gray)")
    parser.add_argument("--data", type=Path, default=None,
                        help="dataset folder or a folder containing it "
                        "(default: $FACEROBUST_DATA, then the cache)")
    parser.add_argument("--attack", default="pgd", choices=ATTACK_NAMES)
    parser.add_argument("--norm", default="linf", choices=("linf", "l2"))
    parser.add_argument("--eps", default="1/255,2/255,4/255",
                        help="comma-separated budgets, e.g. 1/255,2/255,0.03 (inf for cw/"
                        "deepfool/hsj = unbounded)")
    parser.add_argument("--goal", default="dodging", choices=GOALS)
    parser.add_argument("--n", type=int, default=200, help="number of probes to attack")
    parser.add_argument("--steps", type=int, default=None,
                        help="iterations (default: 10; cw 100; deepfool 50)")
    parser.add_argument("--queries", type=int, default=1000, help="query budget (square, hsj)")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default=None, help="torch device (default: cpu)")
    parser.add_argument("--out", type=Path, required=True, help="output folder")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def build_attack(name: str, *, norm: str, steps: int | None, queries: int,
                 starting_points: Any = None) -> Any:
    """A configured attack for a CLI name (``steps`` None = the attack's default)."""
    from facerobust import attacks as A

    if name == "fgsm":
        return A.FGSM() if norm == "linf" else A.FGM()
    kw = {} if steps is None else {"steps": steps}
    if name == "bim":
        return A.BIM(norm=norm, **kw)
    if name == "pgd":
        return A.PGD(norm=norm, **kw)
    if name == "mifgsm":
        return A.MIFGSM(norm=norm, **kw)
    if name == "cw":
        if norm != "l2":
            raise ValueError("cw is an L2 attack: use --norm l2")
        return A.CarliniWagnerL2(binary_search_steps=5, initial_const=1.0, **kw)
    if name == "deepfool":
        return A.DeepFool(norm=norm, **kw)
    if name == "square":
        return A.SquareAttack(norm=norm, max_queries=queries)
    if name == "hsj":
        return A.HopSkipJump(norm=norm, max_queries=queries, starting_points=starting_points)
    raise ValueError(f"unknown attack {name!r}; choose from {', '.join(ATTACK_NAMES)}")


def run(args: argparse.Namespace) -> int:
    import torch
    from tqdm import tqdm

    from facerobust import models
    from facerobust.attacks import flat_norm, format_epsilon, parse_epsilons
    from facerobust.attacks.cli_data import prepare
    from facerobust.attacks.examples import save_examples
    from facerobust.data import resolve_dataset

    if args.n < 1:
        raise ValueError(f"--n must be >= 1, got {args.n}")
    if args.batch_size < 1:
        raise ValueError(f"--batch-size must be >= 1, got {args.batch_size}")
    eps = parse_epsilons(args.eps)
    # validate the attack settings before any heavy work
    build_attack(args.attack, norm=args.norm, steps=args.steps, queries=args.queries)
    torch.set_num_threads(min(torch.get_num_threads(), 2))
    t0 = time.perf_counter()
    root = resolve_dataset(args.dataset, args.data)
    model = models.load(args.model, device=args.device)
    task = prepare(args.goal, model, root, n=args.n, seed=args.seed,
                   progress=not args.no_progress)
    n = len(task.x)
    if n == 0:
        raise ValueError("no probes left to attack (all images skipped or clean errors)")
    gen = torch.Generator().manual_seed(args.seed)
    succ, after, sizes, queries, adv_keep = [], [], [], [], []
    passes = 0
    bar = tqdm(total=n, desc=f"{args.attack} {args.goal}", unit="probe",
               disable=args.no_progress, file=sys.stderr)
    for i in range(0, n, args.batch_size):
        sl = slice(i, min(n, i + args.batch_size))
        idx = torch.arange(sl.start, sl.stop)
        x = task.x[sl]
        starts = task.starting_points[sl] if task.starting_points is not None else None
        attack = build_attack(args.attack, norm=args.norm, steps=args.steps,
                              queries=args.queries, starting_points=starts)
        res = attack(task.model, x, task.criterion.subset(idx), epsilons=eps, generator=gen)
        passes += res.passes
        succ.append(res.success)
        with torch.no_grad():
            after.append(torch.stack([task.score(task.model(c), idx) for c in res.clipped], 1))
        sizes.append(torch.stack([flat_norm(c - x, args.norm) for c in res.clipped], 1))
        adv_keep.append(res.clipped[-1])
        if res.queries is not None:
            queries.append(res.queries)
        bar.update(len(x))
    bar.close()
    success = torch.cat(succ, 1)
    after_t, sizes_t = torch.cat(after), torch.cat(sizes)
    per_eps = []
    for k, e in enumerate(eps):
        per_eps.append({
            "epsilon": e if e != float("inf") else None,
            "label": format_epsilon(e),
            "success_rate": float(success[k].float().mean()),
            "n_success": int(success[k].sum()),
            f"mean_{task.score_name}_before": float(task.before.mean()),
            f"mean_{task.score_name}_after": float(after_t[:, k].mean()),
            "mean_perturbation_norm": float(sizes_t[:, k].mean()),
        })
    settings = build_attack(args.attack, norm=args.norm, steps=args.steps,
                            queries=args.queries).settings()
    doc = {
        "model": args.model, "dataset": args.dataset, "dataset_root": str(root),
        "goal": args.goal, "attack": args.attack, "norm": args.norm,
        "attack_settings": settings, "seed": args.seed, "n_requested": args.n,
        "n_attacked": n, "batch_size": args.batch_size, "score": task.score_name,
        **task.info, "per_epsilon": per_eps, "model_passes": passes,
        "mean_queries": float(torch.cat(queries).float().mean()) if queries else None,
        "seconds": time.perf_counter() - t0,
        "skipped_images": [s.to_dict() for s in task.skipped],
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "attack.json").write_text(json.dumps(doc, indent=2) + "\n")
    adv = torch.cat(adv_keep)
    save_examples(args.out / "examples.png", task.x, adv, task.before, after_t[:, -1],
                  success[-1], score_name=task.score_name,
                  title=f"{args.model} {args.goal} {args.attack}-{args.norm} "
                  f"eps={format_epsilon(eps[-1])}")
    for row in per_eps:
        print(f"eps {row['label']:>8}  success {100 * row['success_rate']:6.2f}%  "
              f"{task.score_name} {row[f'mean_{task.score_name}_before']:.3f} -> "
              f"{row[f'mean_{task.score_name}_after']:.3f}")
    print(f"saved {args.out / 'attack.json'} and {args.out / 'examples.png'}", file=sys.stderr)
    return 0
