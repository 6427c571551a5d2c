"""Joining or starting a Ray cluster: shared by the audit's Ray executor
(:mod:`facerobust.eval.ray_executor`) and ``facerobust data prepare --executor ray``
(:mod:`facerobust.data.prepare_ray`). Ray is an optional extra (``facerobust[scale]``)."""

from __future__ import annotations

import logging
import os
from typing import Any

INSTALL_HINT = 'pip install "facerobust[scale]"'


def require_ray(what: str = 'run.executor = "ray"') -> Any:
    """The ``ray`` module, or a ValueError naming ``what`` asked for it and how to install it."""
    try:
        import ray
    except ImportError as err:
        raise ValueError(f"{what} needs the ray package ({err}); "
                         f"install it with: {INSTALL_HINT}") from None
    return ray


def connect(ray: Any, address: str | None, num_cpus: int | None = None) -> bool:
    """Join the cluster at ``address`` or start a local one (``num_cpus``, default every CPU);
    ``True`` when this call started Ray (and should shut it down). Already connected: reuse."""
    if ray.is_initialized():
        return False
    if address:
        try:
            ray.init(address=address, logging_level=logging.WARNING)
        except Exception as err:  # Ray raises ConnectionError, RuntimeError, ValueError...
            raise OSError(f"--address {address}: cannot join the Ray cluster ({err})") from None
    else:
        ray.init(num_cpus=num_cpus or os.cpu_count() or 1, include_dashboard=False,
                 logging_level=logging.WARNING)
    return True
