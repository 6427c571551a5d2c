"""Database URLs for the gate's storage tests: SQLite always, PostgreSQL from
``FACEROBUST_TEST_PG_URL`` (.ci/run starts a real server and sets it; required in CI)."""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import pytest

PG_ENV = "FACEROBUST_TEST_PG_URL"


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'gate.db'}"
    url = os.environ.get(PG_ENV, "")
    if not url:
        if os.environ.get("FACEROBUST_CI"):
            pytest.fail(f"{PG_ENV} is not set in CI: .ci/start-postgres should have started a "
                        "PostgreSQL server")
        pytest.skip(f"no PostgreSQL server: set {PG_ENV} (e.g. `. .ci/start-postgres`)")
    return _fresh_schema(url)


def _fresh_schema(url: str) -> str:
    """A private schema per test, so tests never see each other's rows."""
    import sqlalchemy as sa

    schema = "t" + uuid.uuid4().hex[:12]
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        conn.execute(sa.text(f"CREATE SCHEMA {schema}"))
    engine.dispose()
    sep = "&" if "?" in url else "?"
    return f"{url}{sep}options=-csearch_path%3D{schema}"
