"""``facerobust serve``: run the access-control gate (FastAPI + uvicorn) from a TOML config.

The admin key and database URL come from the config or from ``FACEROBUST_GATE_ADMIN_KEY`` /
``FACEROBUST_GATE_DB``.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from facerobust.service.server import serve


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", type=Path, required=True, help="gate TOML config")
    parser.add_argument("--host", default="127.0.0.1", help="address to bind")
    parser.add_argument("--port", type=int, default=8000, help="TCP port")
    parser.add_argument("--model", default="",
                        help="replace the config's system.model: a zoo name, a model spec "
                             "(*.toml) or a model added by `facerobust models add`")
    parser.add_argument("--log-level", default="warning",
                        choices=("critical", "error", "warning", "info", "debug"))


def run(args: argparse.Namespace) -> int:

    if not 0 < args.port < 65536:
        raise ValueError(f"--port must be 1-65535, got {args.port}")
    serve(args.config, host=args.host, port=args.port, log_level=args.log_level,
          model=args.model)
    return 0
