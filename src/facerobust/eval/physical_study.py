"""The physical-accessory study: for a few attackers of a dataset, optimise each accessory
for each goal (dodging: not recognised as themself; impersonation: accepted as a victim;
untargeted / targeted: the closed-set identification over the study's people names someone
other than the attacker / names the victim) and
judge it on held-out captures by the face system's exact pipeline, beside a random texture
of the same shape. Universal (the realistic case): one accessory for all of an attacker's
photos, optimised on half of them and judged on the other half. Per photo (an upper bound):
one accessory per photo, judged on held-out captures of that photo."""

from __future__ import annotations

import random
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import torch
from tqdm import tqdm

from facerobust.attacks.accessory import region
from facerobust.data.capture import CaptureError
from facerobust.data.sources import Dataset
from facerobust.defenses import parse_defense
from facerobust.eval.datasource import DataSource, as_dataset
from facerobust.eval.physical_files import write_preview, write_printable
from facerobust.eval.results_physical import PhysicalResults, PhysicalRow, PhysicalSummary
from facerobust.eval.stats import Rate
from facerobust.system.capture_variation import draws
from facerobust.system.face_system import FaceSystem
from facerobust.system.physical import (
    GOALS,
    IDENTIFY_GOALS,
    PhysicalOptions,
    Shot,
    control_texture,
    decide,
    evaders,
    heldout_captures,
    judge,
    optimise,
    shot_of,
    wear,
)
from facerobust.system.spec import SystemSpec

SIMULATED = ("Printing and photographing are simulated: the accessory is rendered onto the "
             "attacker's photo where the capture's landmarks put it, then each held-out "
             "capture draws its placement on the face (shift, rotation), head position and "
             "distance, lighting, colour cast, blur, sensor noise and JPEG quality "
             "(facerobust.system.capture_variation); the exact gate pipeline decides. Colours "
             "are snapped to the printer palette; no printer's gamut or paper was measured.")


@dataclass(frozen=True)
class StudyOptions:
    """Which accessories and goals, on how many attackers and photos."""

    accessories: tuple[str, ...] = ("eyeglasses",)
    goals: tuple[str, ...] = ("dodging", "impersonation")
    universal: bool = True
    attackers: int = 2
    photos: int = 5  # per attacker: 1 enrolled, the rest split train / held-out
    attack: PhysicalOptions = field(default_factory=PhysicalOptions)
    dpi: int = 300
    seed: int = 0
    progress: bool = True
    also: tuple[str, ...] = ()  # other systems judging the same captures: "MODEL[@DEFENSE]"

    def __post_init__(self) -> None:
        for acc in self.accessories:
            replace(self.attack, accessory=acc)  # validates
        for goal in self.goals:
            if goal not in GOALS:
                raise ValueError(f"goal must be one of {', '.join(GOALS)}, got {goal!r}")
        for spec in self.also:
            also_spec(spec, "hog")  # validates
        if self.attackers < 1 or self.photos < 3:
            raise ValueError("need attackers >= 1 and photos >= 3 (1 enrolled, train, held-out)")


class DecisionOracle(Protocol):
    """A live system deciding the captures too, e.g. a running gate over HTTP
    (:class:`facerobust.service.physical_gate.GateOracle`)."""

    def enroll(self, identity: str, photo: bytes) -> None:
        """Enroll ``photo`` as the only template of ``identity``."""

    def accepts(self, photo: bytes, claimed: str) -> bool | None:
        """Whether the system accepts ``photo`` as ``claimed`` (None: refused, no face)."""


@dataclass
class Attacker:
    name: str
    template: np.ndarray  # (1, D): the enrolled photo's descriptor
    train: list[Shot]
    heldout: list[Shot]
    enrolled: bytes = b""  # the enrolled photo (other systems compute their own template)


def also_spec(spec: str, detector: str) -> SystemSpec:
    """``"MODEL"`` or ``"MODEL@DEFENSE"`` as a system spec (the study's face detector)."""
    model, _, defense = spec.partition("@")
    parse_defense(defense or "none")
    return SystemSpec(model=model, defense=defense or "none", detector=detector)


def also_systems(options: StudyOptions, detector: str) -> dict[str, FaceSystem]:
    """The systems of ``options.also``, loaded (transfer targets, defended systems)."""
    return {spec: FaceSystem.from_spec(also_spec(spec, detector), where="--also")
            for spec in options.also}


def choose_people(ds: Dataset, options: StudyOptions) -> tuple[list[str], list[str]]:
    """``(attackers, victims)``: people with enough photos, shuffled by the seed; each
    attacker's victim is the next person in that order."""
    people = sorted(p for p, photos in ds.people.items() if len(photos) >= options.photos)
    if len(people) < options.attackers + 1:
        raise ValueError(f"only {len(people)} people have {options.photos} photos; need "
                         f"{options.attackers + 1}")
    random.Random(options.seed).shuffle(people)
    attackers = people[:options.attackers]
    return attackers, people[1:options.attackers + 1]


def load_attacker(system: FaceSystem, ds: Dataset, name: str, options: StudyOptions,
                  skipped: list[dict[str, str]]) -> Attacker:
    files = sorted(ds.people[name])[:options.photos]
    template = system.probe(files[0].read_bytes(), str(files[0])).embedding[None]
    shots = []
    for f in files[1:]:
        try:
            shots.append(shot_of(system, f.read_bytes(), str(f)))
        except CaptureError as err:
            skipped.append({"path": str(f), "reason": str(err)})
    if len(shots) < 2:
        raise ValueError(f"{name}: fewer than 2 usable photos besides the enrolled one")
    half = max(1, len(shots) // 2)
    enrolled = files[0].read_bytes()
    if options.universal:
        return Attacker(name, template, shots[:half], shots[half:], enrolled)
    return Attacker(name, template, shots, shots, enrolled)


@dataclass(frozen=True)
class Judges:
    """Who else decides the held-out captures: other systems, and a live gate."""

    others: dict[str, FaceSystem] = field(default_factory=dict)
    gate: DecisionOracle | None = None


def gate_rate(gate: DecisionOracle, captures: list[tuple[str, bytes]], claimed: str,
              goal: str) -> Rate:
    """The live gate's verdict on the captures (a refused capture is no success)."""
    wins = sum(gate.accepts(data, claimed) is (goal == "impersonation") for _, data in captures)
    return Rate(wins, len(captures))


@dataclass(frozen=True)
class Aim:
    """What one accessory aims at: the target's template (verification goals) or the study's
    gallery with the row of the attacker (untargeted) or victim (targeted), the target's
    enrolled photo, and the target's name."""

    templates: np.ndarray
    photo: bytes
    name: str
    index: int = 0


def attack_one(system: FaceSystem, who: Attacker, aim: Aim, opts: PhysicalOptions, out: Path,
               options: StudyOptions, judges: Judges) -> PhysicalRow:
    """Optimise, judge, and write the files of one attacker x accessory x goal."""
    started = time.perf_counter()
    heldout = draws(opts.variation, opts.heldout_captures, opts.seed, "heldout")
    target, target_photo, target_name, index = aim.templates, aim.photo, aim.name, aim.index
    target_t = torch.from_numpy(target)
    if options.universal:
        texture, trace = optimise(system, who.train, target_t, opts, index=index)
        textures = [(texture, who.heldout)]
    else:  # one texture per photo, judged on that photo
        per = [optimise(system, [s], target_t, opts, index=index) for s in who.train]
        textures, trace = [(t, [s]) for (t, _), s in zip(per, who.train, strict=True)], per[0][1]
    caps = [heldout_captures(shots, t, opts, heldout) for t, shots in textures]  # once each
    success = _pool([decide(system, c, target, opts.goal, index) for c in caps])
    train = _pool([judge(system, who.train, t, target, opts, heldout, index)
                   for t, _ in textures[:1]])
    control = _pool([judge(system, shots, control_texture(opts), target, opts, heldout, index)
                     for _, shots in textures])
    detected = (Rate(success[2], success[0].n), Rate(control[2], control[0].n)) \
        if system.scorers else (None, None)
    gate = None
    if judges.gate is not None:
        judges.gate.enroll(target_name, target_photo)
        gate = gate_rate(judges.gate, [c for cs in caps for c in cs], target_name, opts.goal)
    also = {}
    for spec, other in judges.others.items():
        templ = other.probe(target_photo, target_name).embedding[None]
        also[spec] = _pool([decide(other, c, templ, opts.goal) for c in caps])[0]
    stem = f"{who.name}-{opts.accessory}-{opts.goal}"
    png, pdf, preview = (out / f"{stem}.png", out / f"{stem}.pdf", out / f"{stem}-preview.png")
    write_printable(textures[0][0], opts.accessory, png, pdf, options.dpi)
    shot = textures[0][1][0]
    with torch.no_grad():
        write_preview([wear(shot, textures[0][0], region(opts.accessory), d) for d in heldout[:4]],
                      preview)
    return PhysicalRow(who.name, target_name, opts.accessory, opts.goal, options.universal,
                       success[0], train[0], control[0], success[1], png.name, pdf.name,
                       preview.name, round(time.perf_counter() - started, 1),
                       {k: [round(v, 5) for v in vs] for k, vs in asdict(trace).items()},
                       also, gate, *detected)


def study_gallery(system: FaceSystem, ds: Dataset, people: list[str]
                  ) -> tuple[list[str], np.ndarray]:
    """The identification goals' gallery: every attacker and victim enrolled with their
    first photo (the one the attackers' own template comes from)."""
    names = list(dict.fromkeys(people))
    rows = [system.probe(sorted(ds.people[n])[0].read_bytes(), n).embedding[None]
            for n in names]
    return names, np.concatenate(rows)


def _pool(judged: list[Any]) -> tuple[Rate, int, int]:
    """Pooled successes, captures without a face, captures a detector flagged."""
    return (Rate(sum(j.success.k for j in judged), sum(j.success.n for j in judged)),
            sum(j.no_face for j in judged), sum(j.flagged for j in judged))


def _total(rates: list[Rate | None]) -> Rate | None:
    """Rates pooled over rows (None when no row has one)."""
    present = [r for r in rates if r is not None]
    return Rate(sum(r.k for r in present), sum(r.n for r in present)) if present else None


def summarise(rows: list[PhysicalRow]) -> list[PhysicalSummary]:
    keys = dict.fromkeys((r.accessory, r.goal, r.universal) for r in rows)
    out = []
    for acc, goal, universal in keys:
        mine = [r for r in rows if (r.accessory, r.goal, r.universal) == (acc, goal, universal)]
        out.append(PhysicalSummary(acc, goal, universal, len(mine),
                                   Rate(sum(r.success.k for r in mine),
                                        sum(r.success.n for r in mine)),
                                   Rate(sum(r.control.k for r in mine),
                                        sum(r.control.n for r in mine)),
                                   {spec: Rate(sum(r.also[spec].k for r in mine),
                                               sum(r.also[spec].n for r in mine))
                                    for spec in mine[0].also}, _total([r.gate for r in mine]),
                                   _total([r.detected for r in mine]),
                                   _total([r.control_detected for r in mine])))
    return out


def run_physical(system: FaceSystem, source: Dataset | DataSource | Path | str,
                 options: StudyOptions, out: Path,
                 judges: Judges | None = None) -> PhysicalResults:
    """The whole study (see the module docstring); files go to ``out`` (the run folder).
    ``judges`` decide the same captures too: other systems (default: :func:`also_systems`;
    transfer, and the naive case of a defense) and a live gate."""
    if judges is None:
        judges = Judges(also_systems(options, system.capture.detector))
    if options.attack.adaptive > 0 and not evaders(system):
        raise ValueError("adaptive accessory: the face system has no detector file to evade")
    identification = [g for g in options.goals if g in IDENTIFY_GOALS]
    if identification and (judges.others or judges.gate is not None):
        raise ValueError(f"goals {', '.join(identification)}: other systems (--also) and a "
                         "live gate (--gate) judge the verification goals (dodging, "
                         "impersonation) only")
    ds = as_dataset(source)
    attackers, victims = choose_people(ds, options)
    gallery = study_gallery(system, ds, attackers + victims) if identification else None
    skipped: list[dict[str, str]] = []
    rows: list[PhysicalRow] = []
    jobs = [(a, v, acc, goal) for a, v in zip(attackers, victims, strict=True)
            for acc in options.accessories for goal in options.goals]
    loaded: dict[str, Attacker] = {}
    items: Any = tqdm(jobs, desc="accessories", unit="attack") if options.progress else jobs
    for name, victim, acc, goal in items:
        who = loaded.get(name) or load_attacker(system, ds, name, options, skipped)
        loaded[name] = who
        opts = replace(options.attack, accessory=acc, goal=goal, seed=options.seed)
        if gallery is not None and goal in IDENTIFY_GOALS:
            names, templates = gallery
            aim_name = name if goal == "untargeted" else victim
            aim = Aim(templates, b"", aim_name, names.index(aim_name))
        elif goal == "dodging":
            aim = Aim(who.template, who.enrolled, name)
        else:
            photo = sorted(ds.people[victim])[0].read_bytes()
            aim = Aim(system.probe(photo, victim).embedding[None], photo, victim)
        rows.append(attack_one(system, who, aim, opts, out, options, judges))
    return PhysicalResults(system.describe(), _plain_options(options), SIMULATED,
                           summarise(rows), rows, skipped)


def _plain_options(options: StudyOptions) -> dict[str, Any]:
    plain = asdict(replace(options, progress=False))
    plain["attack"]["palette"] = [list(c) for c in options.attack.palette]
    return plain


__all__ = ["SIMULATED", "DecisionOracle", "Judges", "StudyOptions", "run_physical"]
