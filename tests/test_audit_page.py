"""The audit page verifies the whole hash chain on demand only (its button, ``?verify=1``): a national
log is too long to read at every view."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text

from tests.servicekit import BACKENDS, bearer, make_app, migrated_engine


@pytest.mark.parametrize("backend", BACKENDS)
def test_the_chain_is_verified_when_asked(backend: str, tmp_path: Path) -> None:
    with migrated_engine(backend, tmp_path) as engine:
        client = TestClient(make_app(engine, demo=False))
        admin = {**bearer(client, "admin"), "accept": "text/html"}
        page = client.get("/audit", headers=admin)
        assert page.status_code == 200 and 'id="verify"' in page.text and 'id="chain"' not in page.text
        checked = client.get("/audit?verify=1", headers=admin)
        assert 'id="chain"' in checked.text and "intact" in checked.text
        # a broken chain shows as broken (the triggers refuse edits: drop them as an attacker would)
        with engine.begin() as conn:
            if backend == "sqlite":
                names = [r[0] for r in conn.execute(text(
                    "SELECT name FROM sqlite_master WHERE type = 'trigger' AND tbl_name = 'audit_log'"))]
                for n in names:
                    conn.execute(text(f'DROP TRIGGER "{n}"'))
            else:
                conn.execute(text("ALTER TABLE audit_log DISABLE TRIGGER USER"))
            conn.execute(text("UPDATE audit_log SET details = :d WHERE seq = 1"), {"d": '{"x": 1}'})
        broken = client.get("/audit?verify=1", headers=admin)
        assert "BROKEN" in broken.text
        # the reviewer reads the log but does not verify it: no button, no report
        reviewer = client.get("/audit?verify=1", headers={**bearer(client, "reviewer"), "accept": "text/html"})
        assert reviewer.status_code == 200 and 'id="verify"' not in reviewer.text and 'id="chain"' not in reviewer.text
