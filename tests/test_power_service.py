"""Power planning in the service: the family page (power, the suggested next
sample, the LR plot), the weak-families list (sortable) and the JSON API,
on the demo case. The role matrix is in test_service_roles.py."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from opendvi.data import demo_case_path
from opendvi.io.case_json import read_case
from opendvi.power import PowerSettings, family_power
from tests.servicekit import assert_error_shape, bearer, make_app, migrated_engine


@pytest.fixture(scope="module")
def svc(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    tmp = tmp_path_factory.mktemp("power")
    with migrated_engine("sqlite", tmp) as engine:
        client = TestClient(make_app(engine))
        yield {"client": client, "intake": bearer(client, "intake"), "lab": bearer(client, "lab")}


def test_api_family_power__equals_the_library(svc: dict[str, Any]) -> None:
    r = svc["client"].get("/api/power/families/F5", headers=svc["intake"])
    assert r.status_code == 200, r.text
    data = r.json()
    case = read_case(Path(demo_case_path()))
    fam = case.family("F5")
    want = family_power(case, fam, fam.missing[0], settings=PowerSettings(rank_by="inclusion"))
    got = data[0]
    assert (got["family"], got["missing"]) == ("F5", fam.missing[0])
    assert got["exclusion"]["total"] == pytest.approx(want.summary.ep_total, abs=1e-12)
    assert got["lr"]["e_log10_lr"] == pytest.approx(want.summary.e_log10_lr, abs=1e-10)
    assert got["inclusion"]["1e4"] == pytest.approx(want.summary.inclusion.at(1e4), abs=1e-9)
    assert got["next"], "F5 has untyped relatives to suggest"
    ips = [c["inclusion"]["1e4"] for c in got["next"]]
    assert all(a >= b - 1e-9 for a, b in itertools.pairwise(ips))  # best first


def test_family_page__shows_power_next_sample_and_plot(svc: dict[str, Any]) -> None:
    c = svc["client"]
    r = c.get("/power/families/F5", headers=svc["intake"])
    assert r.status_code == 200
    assert "Suggested next sample" in r.text and 'id="ip-' in r.text
    assert "/power/lr-plot/families/F5?missing=" in r.text
    png = c.get("/power/lr-plot/families/F5", headers=svc["intake"])
    assert png.status_code == 200 and png.headers["content-type"] == "image/png"
    assert png.content[:8] == b"\x89PNG\r\n\x1a\n"
    bad = c.get("/power/lr-plot/families/F5?missing=NOBODY", headers=svc["intake"])
    assert_error_shape(bad, 404)
    assert_error_shape(c.get("/api/power/families/NOFAMILY", headers=svc["intake"]), 404)
    # the families page links to it (in its power panel)
    assert "/power/families/F5" in c.get("/families", headers=svc["intake"]).text


def test_families_page__power_panel_loads_lazily(svc: dict[str, Any]) -> None:
    """Each family on the families page has a power panel that names the JSON
    API and the plot (identifiers URL-encoded), and one same-origin script
    fills it; rendering the page computes no power."""
    from opendvi.service.routes import power

    c = svc["client"]
    with power._LOCK:
        power._CACHE.clear()
    page = c.get("/families?q=F5", headers=svc["intake"])
    assert page.status_code == 200
    assert not any(k.startswith("family:") for k in power._CACHE)  # nothing computed on render
    text = page.text
    assert 'id="power-F5"' in text and 'data-api="/api/power/families/F5"' in text
    assert 'data-plot="/power/lr-plot/families/F5"' in text
    assert text.count('<script src="/assets/power-panel.js" defer') == 1  # its texts in data-messages
    js = c.get("/assets/power-panel.js", headers=svc["intake"])
    assert js.status_code == 200 and js.headers["content-type"].startswith("text/javascript")
    assert "/api/power" not in js.text or "data-api" in js.text  # the URLs come from the panel
    assert "innerHTML" not in js.text  # text only: codes are never parsed as HTML
    # what the script reads: the API's first result, its suggested next sample, the plot
    data = c.get("/api/power/families/F5", headers=svc["intake"]).json()
    assert data[0]["next"][0]["candidate"] and "1e4" in data[0]["inclusion"] and data[0]["method"]


def test_power_panel__identifiers_are_url_encoded() -> None:
    """A family code with "/", "?" or a space stays one path segment in the panel's URLs."""
    from jinja2 import DictLoader, Environment, FileSystemLoader

    from opendvi import i18n
    from opendvi.service.app import url_part
    from opendvi.service.routes.power import _PANEL_JS

    env = Environment(loader=FileSystemLoader(_PANEL_JS.parent), autoescape=True)
    env.filters["u"] = url_part
    i18n.install(env)  # the panel's texts go through gettext
    env.loader = DictLoader({"t": "{% for f in families %}{% include '_power_panel.html' %}{% endfor %}",
                             "_power_panel.html": (_PANEL_JS.parent / "_power_panel.html").read_text()})
    html = env.get_template("t").render(families=[{"code": "K/7 a?b"}, {"code": "F2"}])
    assert 'data-api="/api/power/families/K%2F7%20a%3Fb"' in html
    assert 'data-plot="/power/lr-plot/families/K%2F7%20a%3Fb"' in html
    assert html.count("/assets/power-panel.js") == 1


def test_weak_list__level_and_sorting(svc: dict[str, Any]) -> None:
    c = svc["client"]
    r = c.get("/api/power/weak?level=1.0&sort=family&order=asc", headers=svc["intake"])
    assert r.status_code == 200, r.text
    data = r.json()
    fams = [w["family"] for w in data["weak"]]
    assert len(fams) >= 2 and fams == sorted(fams)
    desc = c.get("/api/power/weak?level=1.0&sort=family&order=desc", headers=svc["intake"]).json()
    assert [w["family"] for w in desc["weak"]] == sorted(fams, reverse=True)
    by_ip = c.get("/api/power/weak?level=1.0", headers=svc["intake"]).json()["weak"]
    assert [w["ip"] for w in by_ip] == sorted(w["ip"] for w in by_ip)
    assert all(w["ip"] < 1.0 for w in by_ip)
    strict = c.get("/api/power/weak?level=0.5", headers=svc["intake"]).json()
    assert all(w["ip"] < 0.5 for w in strict["weak"]) and len(strict["weak"]) <= len(by_ip)
    page = c.get("/power?level=1.0&sort=e_log10_lr&order=desc", headers=svc["intake"])
    assert page.status_code == 200 and 'id="weak"' in page.text and "▼" in page.text
    assert_error_shape(c.get("/api/power/weak?sort=drop_table", headers=svc["intake"]), 422)


def test_power__refused_to_the_laboratory(svc: dict[str, Any]) -> None:
    c = svc["client"]
    assert_error_shape(c.get("/api/power/weak", headers=svc["lab"]), 403)
    assert c.get("/power/families/F5", headers=svc["lab"]).status_code == 403


def test_power__a_donor_who_withdrew_consent_is_not_used(tmp_path: Path) -> None:
    """Consent withdrawn (``Donor.profile_usable``): the family's power is computed as if the
    donor were untyped, as matching does; before, with the donor, it was not."""
    from sqlalchemy import select, update
    from sqlalchemy.orm import Session

    from opendvi.store.models import Donor, Family

    with migrated_engine("sqlite", tmp_path) as engine:
        client = TestClient(make_app(engine))
        h = bearer(client, "intake")
        before = client.get("/api/power/families/F5", headers=h).json()[0]
        assert before["lr"]["e_log10_lr"] > 1
        with Session(engine) as s, s.begin():
            fid = s.scalar(select(Family.id).where(Family.code == "F5"))
            s.execute(update(Donor).where(Donor.family_id == fid).values(consent="withdrawn"))
        after = client.get("/api/power/families/F5", headers=h).json()[0]
        assert after["lr"]["e_log10_lr"] == pytest.approx(0.0, abs=1e-12)
