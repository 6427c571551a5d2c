"""The face system under test: one object for capture -> defense -> model -> detectors ->
decision, used by the gate, the audit and the studies (:class:`FaceSystem`)."""

from facerobust.system.face_system import Decision, FaceSystem, Gallery, Probe
from facerobust.system.photo import PhotoFaceModel, PhotoOptions
from facerobust.system.spec import SystemSpec, load_detectors, load_model, operating_threshold

__all__ = ["Decision", "FaceSystem", "Gallery", "PhotoFaceModel", "PhotoOptions", "Probe",
           "SystemSpec", "load_detectors", "load_model", "operating_threshold"]
