"""Finding 8 of issue 15: data lost or misdirected.

* the families page's name form changes the name only (date of birth, place last seen
  and notes stay);
* identifiers that came with imports are percent-encoded whole in every link and form
  (``{{ x|u }}``) and taken by ``{x:path}`` routes: barcodes with ``/``, ``#`` and spaces
  open, and a member id such as ``../missing-persons/M3/details?x=`` reaches its own
  record, not M3's.
"""

from __future__ import annotations

import html
import json
import re
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from fastapi.testclient import TestClient

from opendvi.data import demo_case_path
from opendvi.store import repositories as repo
from tests.servicekit import BACKENDS, bearer, make_app, migrated_engine

EVIL = "../missing-persons/M3/details?x="
BARCODES = ("R/1", "R#2", "R 3")


def _case() -> dict[str, Any]:
    case = json.loads(Path(demo_case_path()).read_text())
    case["name"] = "odd ids"
    for r, new in zip(case["remains"], BARCODES, strict=False):
        r["id"] = new
    case["remains"] = case["remains"][:3]
    fam = case["families"][0]
    fam["id"] = "FX"
    rename = {m["id"]: EVIL if m["id"] == "M1" else f"X-{m['id']}" for m in fam["members"]}
    for m in fam["members"]:
        m["id"] = rename[m["id"]]
        for parent in ("father", "mother"):
            if m.get(parent):
                m[parent] = rename[m[parent]]
    case["families"] = [fam]
    return case


@pytest.fixture(params=BACKENDS)
def world(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[dict[str, Any]]:
    with migrated_engine(request.param, tmp_path) as engine:
        app = make_app(engine)
        client = TestClient(app)
        h = {u: bearer(client, u) for u in ("admin", "lab", "intake")}
        r = client.post("/api/operations", json={"code": "ODD", "name": "odd identifiers"}, headers=h["lab"])
        assert r.status_code == 201, r.text
        r = client.post("/api/operations/ODD/imports", json=_case(), headers=h["lab"])
        assert r.status_code == 201, r.text
        yield {"app": app, "client": client, "h": h}


def _details(world: dict[str, Any], code: str) -> Any:
    with world["app"].state.sessionmaker() as db:
        return repo.missing_person_details(db, missing_person=repo.get_missing_person(db, code=code))


def test_the_families_page_saves_the_name_only(world: dict[str, Any]) -> None:
    client, h = world["client"], world["h"]["intake"]
    full = {"full_name": "First Name", "date_of_birth": "1970-05-04", "place_last_seen": "the harbour",
            "notes": "a scar on the left hand"}
    assert client.put("/api/missing-persons/M3/details", json=full, headers=h).status_code == 200
    r = client.post("/missing-persons/M3/details", data={"full_name": "Second Name"}, headers=h,
                    follow_redirects=False)
    assert r.status_code == 303
    det = _details(world, "M3")
    assert det.full_name == "Second Name"
    assert det.date_of_birth == date(1970, 5, 4)
    assert det.place_last_seen == "the harbour" and det.notes == "a scar on the left hand"


def test_a_member_id_with_a_path_in_it_reaches_its_own_record(world: dict[str, Any]) -> None:
    client, h = world["client"], world["h"]["intake"]
    full = {"full_name": "M3's name", "date_of_birth": "1980-01-01", "place_last_seen": "x", "notes": "y"}
    assert client.put("/api/missing-persons/M3/details", json=full, headers=h).status_code == 200
    page = client.get("/families", headers={**h, "accept": "text/html"})
    assert page.status_code == 200
    actions = [html.unescape(a) for a in re.findall(r'action="(/missing-persons/[^"]*/details)"', page.text)]
    evil = [a for a in actions if "M3" in a and a != "/missing-persons/M3/details"]
    assert evil == [f"/missing-persons/{quote(EVIL, safe='')}/details"], actions
    r = client.post(evil[0], data={"full_name": "Typed in the odd row"}, headers=h, follow_redirects=False)
    assert r.status_code == 303, r.text
    assert _details(world, EVIL).full_name == "Typed in the odd row"
    assert _details(world, "M3").full_name == "M3's name"
    # the API takes the encoded id too
    r = client.put(f"/api/missing-persons/{quote(EVIL, safe='')}/details", json={"full_name": "Via the API"},
                   headers=h)
    assert r.status_code == 200, r.text
    assert _details(world, EVIL).full_name == "Via the API" and _details(world, "M3").full_name == "M3's name"


def test_barcodes_with_slash_hash_and_space_open(world: dict[str, Any]) -> None:
    client, h = world["client"], world["h"]["lab"]
    listing = client.get("/remains", params={"operation": "ODD"}, headers={**h, "accept": "text/html"})
    assert listing.status_code == 200
    for barcode in BARCODES:
        enc = quote(barcode, safe="")
        assert f'href="/remains/{enc}"' in listing.text
        r = client.get(f"/api/remains/{enc}", headers=h)
        assert r.status_code == 200 and r.json()["barcode"] == barcode, r.text
        assert client.get(f"/api/remains/{enc}/candidates", headers=world["h"]["admin"]).status_code == 200
        r = client.patch(f"/api/remains/{enc}", json={"bag": "B-1"}, headers=h)
        assert r.status_code == 200 and r.json()["barcode"] == barcode
        page = client.get(f"/remains/{enc}", headers={**h, "accept": "text/html"})
        assert page.status_code == 200 and html.escape(barcode) in page.text
