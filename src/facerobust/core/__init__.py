"""The small bottom layer: rates and intervals, embedding, identity splits, versioned JSON
(nothing here imports the rest of facerobust; the layers are stated in pyproject.toml)."""
