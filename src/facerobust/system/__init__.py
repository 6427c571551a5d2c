"""The face system under test: capture, defense, model, detectors, gallery and decide()."""
