"""The small bottom layer: rates and intervals, embedding and identity splits (no facerobust imports)."""
