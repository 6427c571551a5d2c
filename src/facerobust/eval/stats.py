"""Moved to :mod:`facerobust.core.stats` (the bottom layer); kept so old imports still work."""

from facerobust.core.stats import SMALL_SAMPLE, Z95, Rate, wilson_interval

__all__ = ["SMALL_SAMPLE", "Z95", "Rate", "wilson_interval"]
