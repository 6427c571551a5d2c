"""One prepared experiment: the dataset's pairs and identification split, aligned chips, loaded
models, cached embeddings and identification heads, and per-goal attack samples.

The audit and every command (``attack``, ``defend``, ``train-head``) build an
:class:`Experiment` from an :class:`~facerobust.eval.config.AuditConfig`, so they sample the
same pairs, split identities the same way and score goals the same way.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from facerobust import models
from facerobust.core.stats import Rate
from facerobust.data.capture import Capture
from facerobust.data.chips import load_chips
from facerobust.data.sources import Dataset
from facerobust.eval import tasks
from facerobust.eval.clean import clean_figures
from facerobust.eval.config import AuditConfig
from facerobust.eval.datasource import DataSource
from facerobust.eval.fit_split import fit_prefix, joint_split
from facerobust.eval.protocol import generate_pairs, write_pairs
from facerobust.eval.results import CleanUnit
from facerobust.eval.store import RunStore
from facerobust.models.heads import IdentificationModel, make_head, read_head_file, train_head
from facerobust.system import FaceSystem

log = logging.getLogger("facerobust.audit")


def open_configured_dataset(cfg: AuditConfig, data: Path | None = None) -> Dataset:
    """The dataset of ``cfg.data``: ``root`` when set, else the name looked up under ``data``,
    ``FACEROBUST_DATA`` or the cache; warnings go to the log."""
    d = cfg.data
    source = DataSource(dataset=d.dataset, data=data, layout=d.layout, listing=d.listing,
                        pairs=d.pairs)
    return source.open(Path(d.root).expanduser() if d.root else None, log)


@dataclass(frozen=True)
class GoalSetup:
    """Probes for one goal and, per model, (model to attack / score, criterion reference)."""

    goal: str
    x: torch.Tensor
    refs: dict[str, tuple[nn.Module, torch.Tensor]]
    starting_points: torch.Tensor | None = None


@dataclass(frozen=True)
class GoalRows:
    """The samples of one goal before their chips are read: chip ``rows`` of the probes, the
    per-sample reference of every model, and chip rows of the starting points (decision-based
    attacks). :meth:`take` reads one shard's chips, so memory follows the shard, not ``n``."""

    goal: str
    chips: Any  # a float chip tensor or a ChipRows reading them from the cache
    rows: np.ndarray
    refs: dict[str, tuple[nn.Module, torch.Tensor]]
    start_rows: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.rows)

    def take(self, lo: int = 0, hi: int | None = None) -> GoalSetup:
        """Samples ``lo:hi`` as a :class:`GoalSetup` with their chips read."""
        part = slice(lo, hi)
        refs = {name: (model, ref[part]) for name, (model, ref) in self.refs.items()}
        starts = (None if self.start_rows is None
                  else self.chips[torch.as_tensor(self.start_rows[part])])
        return GoalSetup(self.goal, self.chips[torch.as_tensor(self.rows[part])], refs, starts)


@dataclass
class Experiment:
    cfg: AuditConfig
    root: Path
    chips: Any  # facerobust.data.chips.ChipSet
    pairs: tasks.PairSample
    dropped_pairs: int
    split: tasks.IdentitySplit | None
    head_file: Any  # facerobust.models.heads.HeadFile | None
    models: dict[str, nn.Module]
    missing_models: dict[str, str]
    store: RunStore | None = None
    progress: bool = True
    dataset: Dataset | None = None
    chosen_pairs: list[Any] = field(default_factory=list)
    data_override: Path | None = None
    # data several units need, by run-store key (the detectors' adversarial set), computed once
    shared: dict[str, Any] = field(default_factory=dict)
    # every score of chips on a model, by content: transfer re-scoring done once per chip
    scores: tasks.ScoreCache = field(default_factory=tasks.ScoreCache)
    _emb: dict[str, torch.Tensor] = field(default_factory=dict)
    _heads: dict[str, IdentificationModel] = field(default_factory=dict)
    _systems: dict[str, FaceSystem] = field(default_factory=dict)

    # ------------------------------------------------------------------------------- prepare
    @classmethod
    def prepare(cls, cfg: AuditConfig, *, data: Path | None = None,
                store: RunStore | None = None, progress: bool = True) -> Experiment:
        """Open the dataset, sample (or generate) pairs, split identities, align chips, load
        models. Cheap checks (dataset, head file) run before alignment and model loading."""

        dataset = open_configured_dataset(cfg, data)
        protocol = dataset.pairs
        if protocol is not None:
            limit = tasks.pairs_per_fold_limit(protocol, cfg.data.clean_pairs_per_fold)
            chosen = tasks.select_pairs(protocol, limit)
        else:

            chosen = generate_pairs(dataset.people, per_fold=cfg.data.clean_pairs_per_fold,
                                    seed=cfg.run.seed)
        split, head_file = cls._identification_split(cfg, dataset, data)
        paths = sorted({p for pair in chosen for p in (pair.path_a, pair.path_b)})
        if split is not None:
            paths = sorted(set(paths) | set(split.train_paths) | set(split.probe_paths))
        log.info("aligning %d images from %s (%s layout, detector %s)", len(paths),
                 dataset.root, dataset.layout, cfg.data.detector)
        # streamed: chips stay in the cache and are read in bounded batches when needed
        chips = load_chips(paths, cache=True, progress=progress, detector=cfg.data.detector,
                           lazy=True)
        for skipped in chips.skipped:
            log.warning("skipped %s: %s", skipped.path, skipped.reason)
        pairs, dropped = tasks.pairs_to_indices(chosen, chips.index)
        if len(pairs) == 0 or pairs.same.all() or not pairs.same.any():
            raise ValueError(f"{dataset.root}: after skipping images without a usable face, "
                             "the verification sample lacks matched or mismatched pairs")
        loaded, missing = cls._load_models(cfg)
        exp = cls(cfg=cfg, root=dataset.root, chips=chips, pairs=pairs, dropped_pairs=dropped,
                  split=split, head_file=head_file, models=loaded, missing_models=missing,
                  store=store, progress=progress, dataset=dataset, chosen_pairs=chosen,
                  data_override=data)
        if store is not None:
            exp.write_protocol(store.out / "protocol")
        return exp

    @staticmethod
    def _identification_split(cfg: AuditConfig, dataset: Dataset, data: Path | None = None
                              ) -> tuple[tasks.IdentitySplit | None, Any]:
        ident = cfg.identification
        if not ident.enabled:
            return None, None
        if ident.fit_dataset:
            return joint_split(cfg, dataset, data), None
        if ident.head:

            head = read_head_file(ident.head)
            head.check_compatible(model=cfg.models.victim, root=dataset.root)
            return head.split(dataset.root), head
        split = tasks.identity_split(dataset.people, identities=ident.identities,
                                     images=ident.images_per_identity,
                                     gallery=ident.gallery_per_identity,
                                     min_images=ident.min_images, seed=cfg.run.seed)
        if len(split.names) < ident.identities:
            log.warning("identification.identities: %d requested, only %d identities of %s have "
                        ">= %d images; using %d", ident.identities, len(split.names),
                        dataset.root, max(ident.min_images, ident.gallery_per_identity + 1),
                        len(split.names))
        return split, None

    def write_protocol(self, folder: Path) -> None:
        """The pairs and identification split actually used, beside the results: rerun with
        ``[data] pairs = ".../protocol/pairs.txt"`` and the same identification settings."""


        write_pairs(self.chosen_pairs, folder / "pairs.txt", self.root)
        if self.split is not None:
            (folder / "identification.json").write_text(
                json.dumps(self.split.to_dict(self.root), indent=1), encoding="utf-8")

    @staticmethod
    def _load_models(cfg: AuditConfig) -> tuple[dict[str, nn.Module], dict[str, str]]:

        victim = cfg.models.victim
        names = [victim, *[m for m in cfg.models.others if m != victim]]
        loaded: dict[str, nn.Module] = {}
        missing: dict[str, str] = {}
        for name in names:
            try:
                loaded[name] = models.load(name)
            except FileNotFoundError as err:
                if name == victim:
                    raise
                missing[name] = str(err)
                log.warning("transfer model %s unavailable: %s", name, err)
        if cfg.models.victim_weights:
            load_weights(loaded[victim], Path(cfg.models.victim_weights).expanduser())
        for model in loaded.values():
            model.requires_grad_(False)
        return loaded, missing

    @property
    def victim(self) -> str:
        return self.cfg.models.victim

    @property
    def fit_labels(self) -> frozenset[int]:
        """Labels of the people detectors are fitted on (``[identification] fit_dataset``);
        empty when detectors fit and judge on one dataset's people."""
        prefix = fit_prefix(self.cfg)
        if not prefix or self.split is None:
            return frozenset()
        return frozenset(i for i, n in enumerate(self.split.names) if n.startswith(prefix))

    def system(self, name: str | None = None) -> FaceSystem:
        """The face system under test built on model ``name`` (default: the victim): the
        audit's capture (its detector chain) and the model at its operating threshold; the
        units decide through it."""
        name = name or self.victim
        if name not in self._systems:
            model = self.models[name]
            self._systems[name] = FaceSystem(
                model, threshold=float(model.threshold),  # type: ignore[arg-type]
                capture=Capture(self.cfg.data.detector), name=name)
        return self._systems[name]

    def fingerprint(self, kind: str, *parts: Any) -> str:
        override = "" if self.cfg.data.root or self.data_override is None \
            else str(self.data_override)
        return self.cfg.unit_fingerprint(kind, *parts, data_override=override)

    # ---------------------------------------------------------------------------- embeddings
    def embeddings(self, name: str) -> torch.Tensor:
        """Raw descriptors of every chip under model ``name`` (cached in the run store)."""
        if name not in self._emb:
            key, fp = f"emb-{name}", self.fingerprint("emb", name)
            saved = self.store.load_tensors(key, fp) if self.store is not None else None
            if saved is not None and saved.get("emb") is not None \
                    and len(saved["emb"]) == len(self.chips.paths):
                self._emb[name] = saved["emb"]
            else:
                emb = tasks.embed(self.models[name], self.chips.chips, self.cfg.run.batch_size)
                if self.store is not None:
                    self.store.save_tensors(key, fp, {"emb": emb})
                self._emb[name] = emb
        return self._emb[name]

    def distances(self, name: str) -> np.ndarray:
        emb, model = self.embeddings(name), self.models[name]
        a, b = torch.as_tensor(self.pairs.a), torch.as_tensor(self.pairs.b)
        return model.distance(emb[a], emb[b]).numpy()  # type: ignore[operator]

    def probe_rows(self) -> tuple[np.ndarray, np.ndarray]:
        if self.split is None:
            raise ValueError("identification is not enabled in the config")
        return tasks.rows_for(self.split.probe_paths, self.split.probe_labels, self.chips.index)

    def identification_model(self, name: str) -> IdentificationModel:
        """Model ``name`` + its head over the split's identities: the saved head for the victim
        when one is configured, otherwise a head trained on the enrolment images."""

        if name in self._heads:
            return self._heads[name]
        if self.split is None:
            raise ValueError("identification is not enabled in the config")
        if self.head_file is not None and name == self.victim:
            head = self.head_file.build_head()
        else:
            key, fp = f"head-{name}", self.fingerprint("head", name)
            saved = self.store.load_tensors(key, fp) if self.store is not None else None
            head = make_head("cosine", self.embeddings(name).shape[1], len(self.split.names))
            if saved is None or not _loads(head, saved):
                rows, labels = tasks.rows_for(self.split.train_paths, self.split.train_labels,
                                              self.chips.index)
                head = train_head(self.embeddings(name)[torch.as_tensor(rows)],
                                  torch.as_tensor(labels), n_classes=len(self.split.names),
                                  seed=self.cfg.run.seed)
                if self.store is not None:
                    self.store.save_tensors(key, fp, head.state_dict())
        ident = IdentificationModel(self.models[name], head.eval(), names=self.split.names)
        ident.eval().requires_grad_(False)
        self._heads[name] = ident
        return ident

    # --------------------------------------------------------------------------------- clean
    def clean_unit(self, name: str) -> CleanUnit:

        top1 = None
        if self.split is not None:
            rows, labels = self.probe_rows()
            head = self.identification_model(name).head
            with torch.no_grad():
                logits = head(self.embeddings(name)[torch.as_tensor(rows)])
            top1 = Rate.of(logits.argmax(1).numpy() == labels)
        return clean_figures(name, self.models[name], self.distances(name), self.pairs.same,
                             self.pairs.fold, identification_top1=top1)

    # --------------------------------------------------------------------------------- goals
    def goal_setup(self, goal: str, n: int, seed: int) -> GoalSetup:
        """:meth:`goal_rows` with every sample's chip read (memory linear in ``n``)."""
        return self.goal_rows(goal, n, seed).take()

    def goal_rows(self, goal: str, n: int, seed: int) -> GoalRows:
        """Up to ``n`` samples the victim decides correctly for ``goal`` (spread evenly), the
        reference of every model, and starting points for decision-based attacks; no chip is
        read yet."""
        if goal in tasks.VERIFICATION_GOALS:
            accepted = self.system().accepts(self.distances(self.victim))
            ok = tasks.decided_correctly(goal, accepted, self.pairs.same)
            rows = tasks.spread(np.flatnonzero(ok), n)
            a, b = self.pairs.a[rows], self.pairs.b[rows]
            refs = {name: (model, self.embeddings(name)[torch.as_tensor(b)])
                    for name, model in self.models.items()}
            starts = b if goal == "impersonation" else None
            return GoalRows(goal, self.chips.chips, a, refs, starts)
        if self.split is None:
            raise ValueError(f"goal {goal!r} needs [identification] enabled")
        probe_rows, labels = self.probe_rows()
        victim = self.identification_model(self.victim)
        with torch.no_grad():
            emb = self.embeddings(self.victim)[torch.as_tensor(probe_rows)]
            correct = np.flatnonzero(victim.head(emb).argmax(1).numpy() == labels)
        pick = tasks.spread(correct, n)
        rows, labels = probe_rows[pick], labels[pick]
        if goal == "targeted":
            labels = tasks.targets_for(labels, len(self.split.names), seed)
        target = torch.as_tensor(labels)
        refs = {name: (self.identification_model(name), target) for name in self.models}
        return GoalRows(goal, self.chips.chips, rows, refs)


def load_weights(model: nn.Module, path: Path) -> None:
    """Fine-tuned weights (a state dict, e.g. ``model.pt`` of ``facerobust adv-train``) into
    the victim; errors name the file."""
    if not path.is_file():
        raise FileNotFoundError(f"models.victim_weights: no such file: {path}")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
        model.load_state_dict(state)
    except (RuntimeError, KeyError, TypeError, ValueError) as err:
        raise ValueError(f"models.victim_weights: {path} does not fit the victim "
                         f"({str(err).splitlines()[0]})") from None
    model.eval()


def _loads(module: nn.Module, state: dict[str, Any]) -> bool:
    """Load ``state`` into ``module``; ``False`` (recompute) when it does not fit."""
    try:
        module.load_state_dict(state)
    except (RuntimeError, KeyError) as err:
        log.warning("saved state does not fit (%s): recomputing it", err)
        return False
    return True
