"""The trajectory detector of Massoli et al., "Detection of Face Recognition Adversarial
Attacks", CVIU 2020.

Forward hooks read k internal layers of the victim (for dlib's ResNet: the end of each residual
stage, the embedding, and the identification head's logits), global-average-pooled. At each
layer the probe's distance (L2 or cosine) to every enrolled identity's representative -- the
class centroid (C) or medoid (M) of the gallery's features at that layer -- gives an N-d vector;
with ``nearest = K`` only the K smallest distances, sorted, so the detector does not depend on
who is enrolled (it may be fitted on one gallery's people and judged on another's); the
sequence of k such vectors feeds an LSTM (hidden 100) and a linear layer that outputs the
logit "adversarial". Trained with BCE, Adam and balanced batches; the checkpoint with the best
validation Macro-AUC (mean AUROC over attacks) is kept. The whole pipeline is differentiable,
so adaptive attacks differentiate the exact detector.

>>> det = TrajectoryDetector(ident_model, representative="medoid")   # doctest: +SKIP
>>> det.enroll(gallery_chips, labels).fit(clean_chips, adv_chips)     # doctest: +SKIP
"""

from __future__ import annotations

import contextlib
import copy
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import torch
from torch import nn

from facerobust.detectors.base import Detector, Features, feature_count
from facerobust.detectors.embedding import embedder_of
from facerobust.detectors.metrics import macro_auc

REPRESENTATIVES = ("centroid", "medoid")
METRICS = ("l2", "cosine")


def default_layers(model: nn.Module) -> list[nn.Module]:
    """The end of every residual stage, the embedding and (identification models) the logits."""
    embedder = embedder_of(model)
    blocks = getattr(embedder, "blocks", None)
    if not isinstance(blocks, nn.Sequential) or len(blocks) == 0:
        raise ValueError(f"trajectory: {getattr(embedder, 'name', type(embedder).__name__)} has "
                         "no residual stages to hook (supported: dlib-resnet, dlib-resnet-q8); "
                         "pass layers=[...] explicitly")
    ends = [i for i in range(len(blocks))
            if i == len(blocks) - 1 or getattr(blocks[i + 1], "stride", 1) != 1]
    layers: list[nn.Module] = [blocks[i] for i in ends] + [embedder]
    head = getattr(model, "head", None)
    if isinstance(head, nn.Module):
        layers.append(head)
    return layers


@contextlib.contextmanager
def captured(layers: Sequence[nn.Module]) -> Iterator[list[torch.Tensor]]:
    """Outputs of ``layers`` (global-average-pooled when spatial) during the forward passes."""
    out: list[torch.Tensor] = []

    def hook(_module: nn.Module, _inputs: Any, output: torch.Tensor) -> None:
        out.append(output.mean(dim=(2, 3)) if output.ndim == 4 else output.flatten(1))

    handles = [layer.register_forward_hook(hook) for layer in layers]
    try:
        yield out
    finally:
        for h in handles:
            h.remove()


def _distances(f: torch.Tensor, reps: torch.Tensor, metric: str) -> torch.Tensor:
    if metric == "cosine":
        return 1.0 - nn.functional.normalize(f, dim=1) @ nn.functional.normalize(reps, dim=1).T
    return torch.cdist(f, reps)


def _representatives(f: torch.Tensor, labels: torch.Tensor, kind: str, metric: str
                     ) -> torch.Tensor:
    reps = []
    for identity in range(int(labels.max()) + 1):
        rows = f[labels == identity]
        if rows.shape[0] == 0:
            raise ValueError(f"trajectory: identity {identity} has no enrolled image")
        if kind == "centroid":
            reps.append(rows.mean(dim=0))
        else:
            reps.append(rows[_distances(rows, rows, metric).sum(dim=1).argmin()])
    return torch.stack(reps)


class _Sequence(nn.Module):
    def __init__(self, n_identities: int, hidden: int) -> None:
        super().__init__()
        self.lstm = nn.LSTM(n_identities, hidden, batch_first=True)
        self.out = nn.Linear(hidden, 1)

    def forward(self, seq: torch.Tensor) -> torch.Tensor:
        _, (h, _) = self.lstm(seq)
        return self.out(h[-1])[:, 0]


@dataclass(frozen=True)
class TrajectorySettings:
    """The detector's options: ``representative`` (medoid or centroid) and ``metric`` of the
    per-layer distances, the LSTM's ``hidden`` size, training ``epochs`` and ``seed``, and
    ``nearest`` (0: every enrolled identity in enrolment order; K: the K smallest, sorted)."""

    representative: str = "medoid"
    metric: str = "cosine"
    hidden: int = 100
    epochs: int = 40
    seed: int = 0
    nearest: int = 0

    def __post_init__(self) -> None:
        if self.representative not in REPRESENTATIVES:
            raise ValueError(f"trajectory: representative must be one of {REPRESENTATIVES}, "
                             f"got {self.representative!r}")
        if self.metric not in METRICS:
            raise ValueError(f"trajectory: metric must be one of {METRICS}, got "
                             f"{self.metric!r}")
        if int(self.epochs) < 1 or int(self.hidden) < 1:
            raise ValueError("trajectory: epochs and hidden must be >= 1")
        k = self.nearest
        if isinstance(k, bool) or not isinstance(k, int) or k < 0:
            raise ValueError(f"trajectory: nearest must be an integer >= 0 (0 = every enrolled "
                             f"identity, in enrolment order), got {k!r}")


class TrajectoryDetector(Detector):
    name = "trajectory"
    supervised = True
    feature_key = "trajectory"
    settings_type = TrajectorySettings  # its options (detectors.registry)

    def __init__(self, model: nn.Module, settings: TrajectorySettings | None = None, *,
                 layers: Sequence[nn.Module] | None = None, batch_size: int = 32,
                 **changes: Any) -> None:
        """``settings`` with keyword ``changes`` applied (``representative="centroid"``, ...);
        ``layers`` read (default: :func:`default_layers`)."""
        super().__init__(model, batch_size=batch_size)
        o = replace(settings or TrajectorySettings(), **changes)
        self.nearest = o.nearest
        self.representative, self.metric = o.representative, o.metric
        self.hidden, self.epochs, self.seed = int(o.hidden), int(o.epochs), int(o.seed)
        self.layers = list(layers) if layers is not None else default_layers(model)
        self.reps: list[torch.Tensor] = []
        self.history: list[float] = []

    @property
    def label(self) -> str:
        k = f" nearest-{self.nearest}" if self.nearest else ""
        return f"trajectory {self.representative[0].upper()}-{self.metric}{k}"

    def options(self) -> dict[str, Any]:
        return {"representative": self.representative, "metric": self.metric,
                "hidden": self.hidden, "epochs": self.epochs, "seed": self.seed,
                **({"nearest": self.nearest} if self.nearest else {})}

    # ----------------------------------------------------------------------------- features
    def _forward(self, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        with captured(self.layers) as out:
            output = self.model(x)
        if len(out) != len(self.layers):
            raise ValueError(f"trajectory: {len(self.layers)} layers hooked but {len(out)} "
                             "outputs seen (is a layer used twice or not at all?)")
        return output, list(out)

    def features_batch(self, x: torch.Tensor) -> Features:
        return self._forward(x)[1]

    def guarded_forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        self._check_fitted()
        output, features = self._forward(x)
        return output, self.score_batch(features)

    def enroll(self, chips: torch.Tensor, labels: torch.Tensor | np.ndarray) -> Detector:
        return self.enroll_features(self.features(chips), labels)

    def enroll_features(self, features: Features, labels: torch.Tensor | np.ndarray
                        ) -> Detector:
        labels = torch.as_tensor(np.asarray(labels), dtype=torch.long)
        self.reps = [_representatives(f, labels, self.representative, self.metric)
                     for f in features]
        raw = [_distances(f, r, self.metric) for f, r in zip(features, self.reps, strict=True)]
        self.mean = torch.stack([d.mean() for d in raw])
        self.std = torch.stack([d.std() for d in raw]).clamp_min(1e-6)
        return self

    def sequence(self, features: Features) -> torch.Tensor:
        if not self.reps:
            raise ValueError("trajectory: enroll(gallery_chips, labels) first")
        steps = [(_distances(f, r.to(f.device), self.metric) - m) / s for f, r, m, s
                 in zip(features, self.reps, self.mean, self.std, strict=True)]
        if self.nearest:  # identity-agnostic: the k smallest distances per layer, sorted
            k = self.width
            steps = [d.topk(k, dim=1, largest=False).values for d in steps]
        return torch.stack(steps, dim=1)

    @property
    def width(self) -> int:
        """The LSTM's input size: enrolled identities, or ``nearest`` of them."""
        n = len(self.reps[0]) if self.reps else 0
        return min(self.nearest, n) if self.nearest else n

    def score_batch(self, features: Features) -> torch.Tensor:
        return self.net(self.sequence(features))

    # ----------------------------------------------------------------------------------- fit
    def fit_features(self, clean: Features, adversarial: Features | None = None,
                     **kwargs: Any) -> Detector:
        if adversarial is None or feature_count(adversarial) == 0:
            raise ValueError("trajectory: fit needs adversarial examples (it is supervised)")
        torch.manual_seed(self.seed)
        self.net = _Sequence(self.width, self.hidden)
        x = torch.cat([self.sequence(clean), self.sequence(adversarial)]).detach()
        y = torch.cat([torch.zeros(feature_count(clean)), torch.ones(feature_count(adversarial))])
        validation = kwargs.get("validation")
        self._train(x, y, validation)
        self.fitted = True
        return self

    def _train(self, x: torch.Tensor, y: torch.Tensor, validation: Any) -> None:
        g = torch.Generator().manual_seed(self.seed)
        opt = torch.optim.Adam(self.net.parameters(), lr=1e-3)
        pos, neg = torch.nonzero(y == 1)[:, 0], torch.nonzero(y == 0)[:, 0]
        half = min(self.batch_size, 64) // 2
        per_epoch = max(1, 2 * max(len(pos), len(neg)) // (2 * half))
        best, best_state = -1.0, copy.deepcopy(self.net.state_dict())
        self.history = []
        for _ in range(self.epochs):
            self.net.train()
            for _ in range(per_epoch):
                rows = torch.cat([pos[torch.randint(len(pos), (half,), generator=g)],
                                  neg[torch.randint(len(neg), (half,), generator=g)]])
                opt.zero_grad()
                loss = nn.functional.binary_cross_entropy_with_logits(self.net(x[rows]), y[rows])
                loss.backward()
                opt.step()
            self.net.eval()
            if validation is not None:
                score = self._validation_auc(validation)
                self.history.append(score)
                if score > best:
                    best, best_state = score, copy.deepcopy(self.net.state_dict())
        if validation is not None:
            self.net.load_state_dict(best_state)
        self.net.eval().requires_grad_(False)

    def _validation_auc(self, validation: tuple[Features, Features, np.ndarray]) -> float:
        clean, adversarial, groups = validation
        self.fitted = True
        clean_s, adv_s = self.score_features(clean), self.score_features(adversarial)
        return macro_auc(clean_s, adv_s, np.asarray(groups))

    # ---------------------------------------------------------------------------- save/load
    def state(self) -> dict[str, Any]:
        self._check_fitted()
        return {"reps": self.reps, "mean": self.mean, "std": self.std,
                "net": self.net.state_dict(), "history": list(self.history)}

    def load_state(self, state: dict[str, Any]) -> None:
        self.reps, self.mean, self.std = list(state["reps"]), state["mean"], state["std"]
        self.net = _Sequence(self.width, self.hidden)
        self.net.load_state_dict(state["net"])
        self.net.eval().requires_grad_(False)
        self.history = list(state.get("history", []))
        self.fitted = True
