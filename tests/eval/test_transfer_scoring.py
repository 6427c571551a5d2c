"""Transfer re-scoring without waste: each chip is scored once per target model and budget, the
clean probes once for every attack unit of a goal, and reuse never changes a result."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import torch

from facerobust import models
from facerobust.cli.demo import embedded_dataset
from facerobust.eval.config import load_config
from facerobust.eval.experiment import Experiment
from facerobust.eval.kinds.attack import plan
from facerobust.eval.tasks import ScoreCache
from tests.helpers.models import PooledPixels

POOLS = {"pooled": 8, "pooled-2": 4, "pooled-3": 6}
CONFIG = """
[run]
seed = 1
batch_size = 8

[data]
root = "{root}"
clean_pairs_per_fold = 4
attack_pairs = 8

[models]
victim = "pooled"
others = ["pooled-2", "pooled-3"]

[[attack]]
name = "fgsm"
epsilons = ["1/255", "4/255"]
goals = ["impersonation"]

[[attack]]
name = "pgd"
epsilons = ["1/255", "2/255", "4/255"]
steps = 3
goals = ["impersonation"]
"""


class Counting(PooledPixels):
    """Counts the images it forwards, by model name."""

    seen: dict[str, int] = {}

    def __init__(self, tag: str) -> None:
        super().__init__(POOLS[tag])
        self.tag = tag

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        Counting.seen[self.tag] = Counting.seen.get(self.tag, 0) + len(x)
        return super().forward(x)


@pytest.fixture(scope="module")
def experiment(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Experiment]:
    path = tmp_path_factory.mktemp("config") / "audit.toml"
    path.write_text(CONFIG.format(root=embedded_dataset()))
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(models, "load", lambda name, device=None: Counting(name))
        cfg = load_config(path)
        yield Experiment.prepare(cfg, progress=False)


def _run(exp: Experiment, out: Path, fresh_cache: bool = False) -> list[Any]:
    exp.scores = ScoreCache()
    units = plan(exp.cfg, exp, out)
    for _, _, fn in units:
        fn.bounds()  # the samples (embeddings computed before counting)
    Counting.seen.clear()
    results = []
    for _, _, fn in units:
        if fresh_cache:
            exp.scores = ScoreCache()
        results.append(fn())
    return results


def test_targets_score_each_chip_once(experiment: Experiment, tmp_path: Path) -> None:
    units = _run(experiment, tmp_path)
    n, budgets = units[0].n, sum(len(u.epsilons) for u in units)
    assert n == units[1].n == 8
    # the clean probes once (shared by both units), each unit's chips once per budget
    for target in ("pooled-2", "pooled-3"):
        assert Counting.seen[target] == n * (1 + budgets)


def test_reuse_leaves_results_unchanged(experiment: Experiment, tmp_path: Path) -> None:
    shared = _run(experiment, tmp_path / "a")
    alone = _run(experiment, tmp_path / "b", fresh_cache=True)
    n, budgets = shared[0].n, sum(len(u.epsilons) for u in shared)
    assert Counting.seen["pooled-2"] == n * (len(alone) + budgets)  # clean once per unit
    assert [u.to_dict() | {"seconds": 0} for u in shared] == \
        [u.to_dict() | {"seconds": 0} for u in alone]


def test_score_cache_keys_on_chips_and_reference() -> None:
    model, cache = Counting("pooled-2"), ScoreCache()
    x, ref = torch.rand(4, 3, 150, 150), torch.randn(4, 16)
    Counting.seen.clear()
    first = cache.score("m", model, "impersonation", x, ref, 2)
    again = cache.score("m", model, "impersonation", x.clone(), ref.clone(), 2)
    assert Counting.seen["pooled-2"] == 4 and len(cache) == 1
    assert all((a == b).all() for a, b in zip(first, again, strict=True))
    cache.score("m", model, "impersonation", x, ref + 1, 2)  # another reference: scored
    cache.score("m", model, "impersonation", x * 0.5, ref, 2)  # other chips: scored
    assert Counting.seen["pooled-2"] == 12 and len(cache) == 3
