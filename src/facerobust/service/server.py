"""Build and run the gate from a config: ``facerobust serve --config gate.toml``."""

from __future__ import annotations

import sys
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

import torch

from facerobust.service.app import create_app
from facerobust.service.config import ADMIN_KEY_ENV, GateConfig, load_gate_config
from facerobust.service.gate import Gate
from facerobust.service.pipeline import gate_system, guard_gallery
from facerobust.service.storage import Store, new_secret

if TYPE_CHECKING:
    from fastapi import FastAPI


def build_app(config: GateConfig) -> FastAPI:
    """The FastAPI app for ``config`` (model loaded, database opened, admin key stored)."""


    admin_key = config.admin_key or generated_admin_key()  # checked before the model loads
    torch.set_num_threads(config.gate.torch_threads)
    store = Store(config.database_url)
    system = gate_system(config)
    guard_gallery(system, config, store)
    return create_app(Gate(system, config, store, admin_key))


def generated_admin_key() -> str:
    """A fresh 256-bit admin key, shown once on standard error (only its hash is stored)."""
    key = new_secret(32)
    print(f"facerobust serve: no admin key configured (gate.admin_key / ${ADMIN_KEY_ENV}); "
          f"generated one for this run, shown only now:\n  {key}", file=sys.stderr, flush=True)
    return key


def serve(config_path: str | Path, *, host: str = "127.0.0.1", port: int = 8000,
          log_level: str = "warning", model: str = "") -> None:
    """Run the gate with uvicorn until interrupted (``model``, when given, replaces the
    config's system.model: a zoo name, a model spec file or an added model)."""
    import uvicorn

    config = load_gate_config(config_path)
    if model:
        config = replace(config, gate=replace(config.gate, model=model))
    app = build_app(config)
    # proxy_headers off: uvicorn would otherwise believe X-Forwarded-For from 127.0.0.1;
    # the gate itself trusts only gate.trusted_proxies (Gate.client_address)
    uvicorn.run(app, host=host, port=port, log_level=log_level, access_log=False,
                proxy_headers=False)
