"""The gallery-distance detector fitted on the gate's own gallery (issue 29, item 2): inactive
until the gallery can calibrate it, refitted when the gallery changes, quiet on genuine
probes and loud on a morph of two enrolled people (a probe between identities)."""

from __future__ import annotations

from pathlib import Path

import httpx
import numpy as np
import pytest
import torch

from facerobust import models
from facerobust.attacks.criteria import Impersonation
from facerobust.attacks.registry import build_attack
from facerobust.attacks.threat import LINF
from facerobust.data.capture import Capture
from facerobust.service.gallery_guard import GalleryGuard
from facerobust.service.storage import Store
from facerobust.system import FaceSystem
from tests.helpers import gate as g
from tests.helpers.models import PooledPixels

PEOPLE = ("Abdullah_Gul", "Adam_Sandler", "Adrien_Brody", "Al_Sharpton", "Alejandro_Toledo")


@pytest.fixture(scope="module")
def system() -> FaceSystem:
    torch.set_num_threads(1)
    return FaceSystem(PooledPixels(), threshold=4.0, capture=Capture("hog"))


def enroll(store: Store, system: FaceSystem, name: str, photos: range) -> None:
    probes = [system.probe(g.demo_photo(name, i)) for i in photos]
    store.enroll(name, [(p.sha256, p.embedding) for p in probes])


def test_inactive_until_the_gallery_can_calibrate_it_then_refitted(
        tmp_path: Path, system: FaceSystem) -> None:
    store = Store(f"sqlite:///{tmp_path / 'g.db'}")
    guard = GalleryGuard(store, system.clean_model, 0.05)
    chip = system.probe(g.demo_photo(PEOPLE[0], 4)).chip
    assert guard(chip) == {"active": False, "reject": False}  # empty gallery
    enroll(store, system, PEOPLE[0], range(1, 4))
    assert guard(chip)["active"] is False  # 3 leave-one-out scores: too few to calibrate
    for name in PEOPLE[1:]:
        enroll(store, system, name, range(1, 4))
    flags = guard(chip)
    assert flags["active"] is True and guard.version == store.gallery_version()
    store.delete_identity(PEOPLE[-1])
    assert guard(chip)["active"] is True and guard.version == store.gallery_version()
    assert guard.scorer is not None
    gallery = guard.scorer.detector.gallery  # type: ignore[attr-defined]
    assert gallery.shape[0] == 3 * (len(PEOPLE) - 1)  # refitted on the smaller gallery
    with pytest.raises(ValueError, match="gallery_fpr must lie strictly between 0 and 1"):
        GalleryGuard(store, system.clean_model, 0.0)
    store.close()


def test_genuine_probes_pass_and_a_morph_of_two_people_is_flagged(tmp_path: Path) -> None:
    """dlib-resnet: genuine probes score 1.07-1.18 (one of five over the 10% threshold), the
    morph of the first two people 1.65: it lands between identities."""
    system = FaceSystem(models.load("dlib-resnet"), threshold=0.548, capture=Capture("hog"))
    store = Store(f"sqlite:///{tmp_path / 'g.db'}")
    for name in PEOPLE:
        enroll(store, system, name, range(1, 4))
    guard = GalleryGuard(store, system.clean_model, 0.1)
    genuine = [guard(system.probe(g.demo_photo(n, 4)).chip)["score"] for n in PEOPLE]
    a, b = (system.probe(g.demo_photo(n, 4)).chip for n in PEOPLE[:2])
    morph = guard((a + b) / 2)
    assert morph["reject"] is True and morph["score"] > max(genuine)
    assert sum(guard(system.probe(g.demo_photo(n, 4)).chip)["reject"] for n in PEOPLE) <= 1
    store.close()


def test_a_gate_with_the_gallery_detector_flags_and_logs(tmp_path: Path) -> None:
    db = tmp_path / "gate.db"
    cfg = g.write_config(tmp_path / "gate.toml", f"sqlite:///{db}",
                         gate='detectors = ["gallery"]\ngallery_fpr = 0.1')
    with g.running(cfg) as server:
        for name in PEOPLE:
            r = httpx.post(f"{server.url}/enroll", headers=g.auth(), data={"identity": name},
                           files=[("photos", (f"{i}.jpg", g.demo_photo(name, i), "image/jpeg"))
                                  for i in range(1, 4)])
            assert r.status_code == 200, r.text
        r = httpx.post(f"{server.url}/verify", headers=g.auth(),
                       data={"claimed_identity": PEOPLE[0]},
                       files={"photo": ("p.jpg", g.demo_photo(PEOPLE[0], 4), "image/jpeg")})
        assert r.status_code == 200, r.text
    store = Store(f"sqlite:///{db}")
    flags = [d["flags"] for d in store.decisions() if d["endpoint"] == "verify"]
    store.close()
    assert flags[0]["gallery.active"] is True and np.isfinite(flags[0]["gallery.score"])


def test_an_impersonation_probe_crafted_past_the_model_is_flagged(tmp_path: Path) -> None:
    """The attacker's view: PGD turns a photo of one enrolled person into a probe the model
    accepts as another (first success at 8/255); without the guard the gate would let it in,
    with the guard fitted on the gate's own gallery it is rejected as between identities."""
    torch.set_num_threads(1)
    model = models.load("dlib-resnet")
    system = FaceSystem(model, threshold=float(model.threshold), capture=Capture("hog"))
    store = Store(f"sqlite:///{tmp_path / 'g.db'}")
    for name in PEOPLE:
        enroll(store, system, name, range(1, 4))
    guard = GalleryGuard(store, system.clean_model, 0.1)
    names, templates = store.templates()
    target = templates[[n == PEOPLE[1] for n in names]]
    chip = system.probe(g.demo_photo(PEOPLE[0], 4)).chip
    criterion = Impersonation.for_model(model, torch.from_numpy(target[:1]))
    attack = build_attack("pgd", LINF, steps=20)
    adv = attack(model, chip, criterion, epsilons=[8 / 255],
                 generator=torch.Generator().manual_seed(0)).clipped[0]
    with torch.no_grad():
        emb = model(adv)[0].numpy()
    assert system.accepts(system.distances(emb, target)).any()  # the model lets it in
    flags = guard(adv)
    assert flags["reject"] is True  # the guard does not
    assert guard(chip)["reject"] is False  # the photo it was made from passes
    store.close()
