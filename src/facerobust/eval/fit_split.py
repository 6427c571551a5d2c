"""The identification split of a detector study fitted on one dataset's people and judged on
another's (``[identification] fit_dataset``): the judged dataset's identities first, then
``fit_identities`` people of the fitting dataset, named ``<fit_dataset>:<id>``.

Both sides are drawn with the same images/gallery settings; for CFP the fitting people are CFP
minus its LFW overlap (:func:`facerobust.data.cfp.training_people`), so no person is on both
sides when LFW is judged. The detectors' adversarial set then fits on the fitting people's
probes and judges on the others' (:func:`facerobust.eval.detection_data.build_detection_set`).
"""

from __future__ import annotations

import logging
from pathlib import Path

from facerobust.core.splits import IdentitySplit, identity_split
from facerobust.data.cfp import training_people
from facerobust.data.sources import Dataset
from facerobust.eval.config import AuditConfig
from facerobust.eval.datasource import DataSource

log = logging.getLogger("facerobust.audit")


def fit_prefix(cfg: AuditConfig) -> str:
    """The name prefix of the fitting people in the split (empty without a fit dataset)."""
    name = cfg.identification.fit_dataset
    return f"{name}:" if name else ""


def fit_people(cfg: AuditConfig, data: Path | None = None, judged: Path | None = None
               ) -> dict[str, list[Path]]:
    """The people of ``fit_dataset`` a detector may be fitted on (CFP: minus the LFW
    overlap); an error when the name resolves to the ``judged`` dataset's own folder."""
    name = cfg.identification.fit_dataset
    dataset = DataSource(dataset=name, data=data).open(logger=log)
    if judged is not None and dataset.root.resolve() == judged.resolve():
        raise ValueError(f"identification.fit_dataset: {name!r} resolved to the judged "
                         f"dataset's own folder {judged}; pass a data folder holding both "
                         "datasets (FACEROBUST_DATA or --data)")
    if dataset.layout == "cfp":
        return training_people(dataset.root)
    return dataset.people


def joint_split(cfg: AuditConfig, judged: Dataset, data: Path | None = None) -> IdentitySplit:
    """The judged dataset's split followed by the fitting people's (labels continue)."""
    ident, seed = cfg.identification, cfg.run.seed
    sizes = {"images": ident.images_per_identity, "gallery": ident.gallery_per_identity,
             "min_images": ident.min_images, "seed": seed}
    judge = identity_split(judged.people, identities=ident.identities, **sizes)
    fit = identity_split(fit_people(cfg, data, judged.root), identities=ident.fit_identities,
                         **sizes)
    if len(fit.names) < ident.fit_identities:
        log.warning("identification.fit_identities: %d requested, only %d people of %s have "
                    ">= %d images; using %d", ident.fit_identities, len(fit.names),
                    ident.fit_dataset, max(ident.min_images, ident.gallery_per_identity + 1),
                    len(fit.names))
    if len(fit.names) < 2 or len(judge.names) < 2:
        raise ValueError(f"identification.fit_dataset: {len(fit.names)} fitting and "
                         f"{len(judge.names)} judged identities have enough images; need >= 2 "
                         "each (lower identification.min_images / images_per_identity)")
    offset, prefix = len(judge.names), fit_prefix(cfg)
    return IdentitySplit(
        [*judge.names, *(prefix + n for n in fit.names)],
        [*judge.train_paths, *fit.train_paths],
        [*judge.train_labels, *(offset + y for y in fit.train_labels)],
        [*judge.probe_paths, *fit.probe_paths],
        [*judge.probe_labels, *(offset + y for y in fit.probe_labels)])
