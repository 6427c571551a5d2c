"""Typed, JSON-serialisable results: one frozen dataclass per unit of an experiment.

An audit's ``results.json`` (:class:`facerobust.eval.results_audit.Results`, in the versioned
wrapper of :mod:`facerobust.eval.results_file`) holds ``clean`` (model -> :class:`CleanUnit`),
``attacks`` (:class:`AttackUnit`), ``minimal`` (:class:`MinimalUnit`), ``defenses``
(:class:`DefenseUnit`), ``fusions``, ``detectors`` (:mod:`.results_detection`) and ``certify``
(:mod:`.results_certify`); every rate
is a :class:`~facerobust.eval.stats.Rate` written as
``{"k", "n", "rate", "ci95"}``. ``audit``, ``attack`` and ``defend`` all write this schema, so
``facerobust report`` renders any of them.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from typing import Any, TypeVar, Union

from facerobust.eval.stats import Rate

T = TypeVar("T", bound="Unit")


def to_jsonable(value: Any) -> Any:
    """Dataclasses (and the rates inside them) -> plain JSON values."""
    if isinstance(value, Rate):
        return value.to_dict()
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: to_jsonable(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, dict):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_jsonable(v) for v in value]
    return value


def _from_jsonable(tp: Any, value: Any, where: str) -> Any:
    origin = typing.get_origin(tp)
    if origin in (Union, types.UnionType):
        args = typing.get_args(tp)
        if value is None and type(None) in args:
            return None
        inner = [a for a in args if a is not type(None)]
        return _from_jsonable(inner[0], value, where) if len(inner) == 1 else value
    if tp is Rate:
        try:
            return Rate.from_dict(value)
        except ValueError as err:
            raise ValueError(f"{where}: {err}") from None
    if isinstance(tp, type) and issubclass(tp, Unit):
        return tp.from_dict(value, where=where)
    if origin in (list, tuple):
        (item,) = typing.get_args(tp)[:1]
        if not isinstance(value, list):
            raise ValueError(f"{where}: expected a list, got {type(value).__name__}")
        return [_from_jsonable(item, v, f"{where}[{i}]") for i, v in enumerate(value)]
    if origin is dict:
        _, item = typing.get_args(tp)
        if not isinstance(value, dict):
            raise ValueError(f"{where}: expected an object, got {type(value).__name__}")
        return {k: _from_jsonable(item, v, f"{where}.{k}") for k, v in value.items()}
    return value


class Unit:
    """Mixin: ``to_dict`` / ``from_dict`` for the frozen result dataclasses below."""

    def to_dict(self) -> dict[str, Any]:
        return typing.cast(dict[str, Any], to_jsonable(self))

    @classmethod
    def from_dict(cls: type[T], data: Any, *, where: str = "") -> T:
        name = where or cls.__name__
        if not isinstance(data, dict):
            raise ValueError(f"{name}: expected an object, got {type(data).__name__}")
        hints = typing.get_type_hints(cls)
        fields = {f.name: f for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
        missing = [k for k, f in fields.items() if k not in data
                   and f.default is dataclasses.MISSING
                   and f.default_factory is dataclasses.MISSING]
        if missing:
            raise ValueError(f"{name}: missing key {missing[0]!r}")
        values = {k: _from_jsonable(hints[k], data[k], f"{name}.{k}")
                  for k in fields if k in data}
        return cls(**values)


@dataclasses.dataclass(frozen=True)
class CleanUnit(Unit):
    """Clean verification (10-fold protocol) and identification figures of one model."""

    model: str
    protocol: str  # "k-fold" or "best-threshold"
    n_pairs: int
    n_same: int
    n_diff: int
    n_folds: int
    accuracy: float  # mean over held-out folds (LFW convention) ...
    accuracy_std: float  # ... and its standard deviation over folds
    correct: Rate  # the same held-out decisions pooled: k correct of n pairs
    auc: float
    eer: float
    far: float
    tar_at_far: Rate  # genuine pairs accepted at the threshold giving FAR <= far
    threshold_at_far: float
    best_threshold: float
    operating_threshold: float
    genuine_accept: Rate  # at the operating threshold
    impostor_reject: Rate
    correct_at_operating_threshold: Rate
    roc: dict[str, list[float]]
    identification_top1: Rate | None = None
    seconds: float = 0.0


@dataclasses.dataclass(frozen=True)
class ModelOutcome(Unit):
    """One model's view of a set of (adversarial) probes."""

    clean_success: Rate  # the goal already met without perturbation
    success: list[Rate]  # per epsilon (for transfer: over the samples it handled correctly)
    score_clean: list[float]
    score_adv: list[list[float]]


@dataclasses.dataclass(frozen=True)
class AttackUnit(Unit):
    """One attack with one goal on the victim at every epsilon, re-scored on other models."""

    key: str
    attack: str
    kind: str
    norm: str
    goal: str
    victim: str
    epsilons: list[float]
    epsilon_labels: list[str]
    n: int
    settings: dict[str, Any]
    clean_success: Rate
    success: list[Rate]
    score_clean: list[float]
    score_adv: list[list[float]]
    transfer: dict[str, ModelOutcome]
    mean_perturbation: list[float]  # per epsilon, in the attack's norm (full-budget advs)
    max_perturbation: list[float]
    full_budget_success: list[Rate]  # the victim on the full-budget adversarials
    transfer_adversarials: str  # "full budget" or why not
    queries_mean: float | None = None
    examples: str | None = None
    seconds: float = 0.0
    notes: list[str] = dataclasses.field(default_factory=list)
    surrogates: list[str] = dataclasses.field(default_factory=list)  # ensemble source


@dataclasses.dataclass(frozen=True)
class MinimalUnit(Unit):
    """Smallest successful budget per sample (RobFR's headline metric)."""

    attack: str
    norm: str
    goal: str
    n: int
    max_epsilon: float
    per_sample: list[float | None]
    found: Rate
    median: float | None
    passes: int
    seconds: float = 0.0


@dataclasses.dataclass(frozen=True)
class DefenseUnit(Unit):
    """One defense judged on clean data and under naive, direct, adaptive (BPDA/EOT) and
    optionally black-box attacks; every column is a list of rates, one per epsilon."""

    name: str
    slug: str
    params: dict[str, Any]
    model: str
    goal: str
    attack: str
    norm: str
    epsilons: list[float]
    epsilon_labels: list[str]
    adaptive_mode: str
    clean_measure: str  # what ``clean`` counts: verification decisions or top-1
    clean: Rate  # with the defense in front of the model
    clean_undefended: Rate
    far: float
    tar_at_far: Rate | None  # verification only
    tar_at_far_undefended: Rate | None
    n_attacked: int
    undefended: list[Rate]
    naive: list[Rate]
    adaptive: list[Rate]
    direct: list[Rate] | None
    blackbox: list[Rate] | None
    worst_case: list[Rate]
    ms_per_image: float
    masking: dict[str, Any]
    flags: list[str]  # each a sentence
    notes: list[str]
    seconds: float = 0.0


@dataclasses.dataclass(frozen=True)
class FusionUnit(Unit):
    """Score-level fusion of verification models as a defense: clean decisions of the fused
    verifier and of each member, the white-box attack on the fused verifier (adaptive) and
    chips crafted on each single member alone (transfer), all judged by the fused decision."""

    models: list[str]
    goal: str
    attack: str
    norm: str
    epsilons: list[float]
    epsilon_labels: list[str]
    clean: Rate  # fused verifier: pairs decided correctly at fused score <= 1
    clean_members: dict[str, Rate]
    n_attacked: int
    adaptive: list[Rate]  # white-box on the fused verifier
    from_member: dict[str, list[Rate]]  # crafted on one member, judged by the fusion
    member_whitebox: dict[str, list[Rate]]  # the same chips judged by that member alone
    seconds: float = 0.0


# keys that differ between two runs of the same config (timings, machine, dates)
RUN_SPECIFIC_KEYS = frozenset({"seconds", "started", "finished", "environment", "ms_per_image"})


def without_keys(value: Any, keys: frozenset[str] = RUN_SPECIFIC_KEYS) -> Any:
    """``value`` (a results document or part of it) with ``keys`` removed at every depth:
    what must be identical between reruns, resumed runs and executors."""
    if isinstance(value, dict):
        return {k: without_keys(v, keys) for k, v in value.items() if k not in keys}
    if isinstance(value, list):
        return [without_keys(v, keys) for v in value]
    return value
