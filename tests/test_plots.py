"""Plots (``/plots/...``): every URL gives a valid SVG (parsed) and PNG (signature) for the demo case,
empty-state pictures where there is nothing to draw, the candidate's LR marked, and the simulated
family distribution: seeded, and the true missing person's LR above an unrelated person's."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient

from opendvi.data import demo_case_path
from opendvi.io.case_json import read_case
from opendvi.reports import plots as pl
from opendvi.service.routes import plots as plot_routes
from tests.servicekit import assert_error_shape, bearer, make_app, match, migrated_engine

PNG = b"\x89PNG\r\n\x1a\n"
URLS = ["/plots/operations/demo/lr-histogram", "/plots/operations/demo/progress",
        "/plots/families/F1/lr-distribution", "/plots/families/F4/lr-distribution?missing=M4b",
        "/plots/candidates/{cand}/lr-distribution"]


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    tmp = tmp_path_factory.mktemp("plots")
    pl.CACHE.clear()
    with migrated_engine("sqlite", tmp) as engine:
        app = make_app(engine)
        client = TestClient(app)
        h = {u: bearer(client, u) for u in ("admin", "intake", "dvi", "reviewer", "lab")}
        before = {fmt: client.get(f"/plots/operations/demo/lr-histogram.{fmt}", headers=h["dvi"]) for fmt in
                  ("svg", "png")}
        match(client, app, h["dvi"])
        cand = client.get("/api/remains/V1/candidates", headers=h["dvi"]).json()[0]
        yield {"app": app, "client": client, "h": h, "cand": cand, "before": before}


def _svg(r: Any) -> str:
    assert r.status_code == 200, r.text[:300]
    assert r.headers["content-type"].startswith("image/svg+xml")
    root = ET.fromstring(r.content)
    assert root.tag.endswith("svg")
    return str(r.text)


def _png(r: Any) -> bytes:
    assert r.status_code == 200, r.text[:300]
    assert r.headers["content-type"] == "image/png" and r.content.startswith(PNG)
    return bytes(r.content)


def _url(url: str, fmt: str, cand: int) -> str:
    path, _sep, query = url.format(cand=cand).partition("?")
    return f"{path}.{fmt}" + (f"?{query}" if query else "")


@pytest.mark.parametrize("url", URLS)
def test_each_plot_is_a_valid_svg_and_png(world: dict[str, Any], url: str) -> None:
    client, h, cand = world["client"], world["h"], world["cand"]["id"]
    user = "dvi" if "families" not in url else "intake"  # the intake officer reads families, not operations
    svg = _svg(client.get(_url(url, "svg", cand), headers=h[user]))
    assert "No " not in svg  # real data, not an empty state
    _png(client.get(_url(url, "png", cand), headers=h[user]))


def test_no_run_yet_gives_the_empty_state(world: dict[str, Any]) -> None:
    assert "No finished matching run yet." in _svg(world["before"]["svg"])
    _png(world["before"]["png"])


def test_an_empty_operation_gives_empty_state_plots(world: dict[str, Any]) -> None:
    client, h = world["client"], world["h"]
    r = client.post("/api/operations", json={"code": "EMPTY-1", "name": "nothing yet"}, headers=h["admin"])
    assert r.status_code == 201, r.text
    hist = _svg(client.get("/plots/operations/EMPTY-1/lr-histogram.svg", headers=h["reviewer"]))
    assert "No remains of this operation in matching run" in hist
    assert "No remains received yet." in _svg(client.get("/plots/operations/EMPTY-1/progress.svg",
                                                          headers=h["reviewer"]))
    _png(client.get("/plots/operations/EMPTY-1/progress.png", headers=h["reviewer"]))


def test_a_family_without_typed_references_gives_the_empty_state(world: dict[str, Any]) -> None:
    client, h = world["client"], world["h"]
    fam = (b"family,id,father,mother,sex,missing,sample\n"
           b"FX,FA,,,M,,\nFX,MO,,,F,,\nFX,MPX,FA,MO,M,yes,\n")
    r = client.post("/api/operations/demo/imports/families", files={"families": ("f.csv", fam, "text/csv")},
                    headers=h["intake"])
    assert r.status_code == 201, r.text
    svg = _svg(client.get("/plots/families/FX/lr-distribution.svg", headers=h["intake"]))
    assert "No typed reference in family FX yet" in svg
    _png(client.get("/plots/families/FX/lr-distribution.png", headers=h["intake"]))


def test_the_candidate_plot_marks_the_candidates_lr(world: dict[str, Any]) -> None:
    client, h, cand = world["client"], world["h"], world["cand"]
    svg = _svg(client.get(f"/plots/candidates/{cand['id']}/lr-distribution.svg", headers=h["reviewer"]))
    label = f"log10 LR = {cand['log10_lr']:.2f}"
    assert label in svg and f"candidate {cand['id']} (V1)" in svg
    family = _svg(client.get("/plots/families/F1/lr-distribution.svg", headers=h["reviewer"]))
    assert label not in family  # the family's own picture marks nobody


def test_plots_are_cached_and_the_same_bytes_twice(world: dict[str, Any]) -> None:
    client, h = world["client"], world["h"]
    first = client.get("/plots/families/F2/lr-distribution.svg", headers=h["dvi"]).content
    n = len(pl.CACHE)
    again = client.get("/plots/families/F2/lr-distribution.svg", headers=h["dvi"]).content
    assert first == again and len(pl.CACHE) == n
    pl.CACHE.clear()  # drawn again from the same seed: the same picture
    assert client.get("/plots/families/F2/lr-distribution.svg", headers=h["dvi"]).content == first


def test_unknown_objects_and_bad_input(world: dict[str, Any]) -> None:
    client, h = world["client"], world["h"]
    assert_error_shape(client.get("/plots/operations/NOPE/progress.svg", headers=h["dvi"]), 404)
    assert_error_shape(client.get("/plots/families/NOPE/lr-distribution.svg", headers=h["dvi"]), 404)
    assert_error_shape(client.get("/plots/candidates/999999/lr-distribution.png", headers=h["dvi"]), 404)
    assert_error_shape(client.get("/plots/families/F1/lr-distribution.svg?missing=M9", headers=h["dvi"]), 404)
    assert_error_shape(client.get("/plots/candidates/x/lr-distribution.svg", headers=h["dvi"]), 422)
    # the role: the laboratory reads operations, not families or candidates
    _svg(client.get("/plots/operations/demo/progress.svg", headers=h["lab"]))
    assert_error_shape(client.get("/plots/families/F1/lr-distribution.svg", headers=h["lab"]), 403)


def test_progress_counts_the_series(world: dict[str, Any]) -> None:
    from opendvi.store import repositories as repo

    with world["app"].state.sessionmaker() as db:
        series = repo.operation_progress(db, operation=repo.get_operation(db, code="demo"))
    assert sum(series["received"].values()) == 8 and sum(series["typed"].values()) == 8
    assert 0 < sum(series["matched"].values()) <= 8
    assert sum(series["proposed"].values()) == sum(series["confirmed"].values()) == 0


# ---------------------------------------------------------------------------
# the simulated distribution itself
# ---------------------------------------------------------------------------


@pytest.mark.parametrize(("family", "missing"), [("F1", "M1"), ("F4", "M4a"), ("F5", "M5")])
def test_a_true_relative_lies_above_an_unrelated_person(family: str, missing: str) -> None:
    case = read_case(demo_case_path())
    d = pl.family_distribution(case, family, missing, nsim=4000, seed=7)
    true_median, unrelated_median = pl.medians(d)
    assert np.isfinite(true_median) and true_median > 2
    assert true_median > unrelated_median
    assert (d.true > 4).mean() > (d.unrelated > 4).mean()
    # the exact exclusion probability and the simulated share of excluded unrelated persons agree
    assert abs(d.unrelated_excluded - d.exclusion) < 0.05
    assert not np.isneginf(d.true).any()  # the true missing person is never excluded


def test_the_distribution_is_seeded() -> None:
    case = read_case(demo_case_path())
    a = pl.family_distribution(case, "F5", nsim=2000, seed=3)
    b = pl.family_distribution(case, "F5", nsim=2000, seed=3)
    c = pl.family_distribution(case, "F5", nsim=2000, seed=4)
    assert np.array_equal(a.true, b.true) and np.array_equal(a.unrelated, b.unrelated)
    assert not np.array_equal(a.true, c.true)


def test_the_routes_use_a_modest_number_of_simulations() -> None:
    assert 1000 <= pl.NSIM <= 100_000 and plot_routes.pl is pl


def test_in_ukrainian__the_labels_are_translated(world: dict[str, Any]) -> None:
    client, h = world["client"], world["h"]
    svg = _svg(client.get("/plots/operations/demo/progress.svg", headers={**h["dvi"], "cookie": "opendvi_lang=uk"}))
    assert "Операція demo" in svg  # the catalogue's "Operation %(code)s: progress"
    assert "Операція demo" not in _svg(client.get("/plots/operations/demo/progress.svg", headers=h["dvi"]))


def test_a_family_that_cannot_be_evaluated_gives_a_picture_saying_why(world: dict[str, Any],
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    from opendvi.power import UnevaluableFamily

    def refuse(*_args: Any, **_kwargs: Any) -> Any:
        raise UnevaluableFamily("F3", ["D3S1358"])

    monkeypatch.setattr(pl, "family_distribution", refuse)
    pl.CACHE.clear()
    client, h = world["client"], world["h"]
    svg = _svg(client.get("/plots/families/F3/lr-distribution.svg", headers=h["dvi"]))
    assert "The LR distribution cannot be computed" in svg and "D3S1358" in svg
    _png(client.get("/plots/families/F3/lr-distribution.png", headers=h["dvi"]))
    pl.CACHE.clear()


def test_plot_endpoints_run_in_worker_threads() -> None:
    """Plain functions (FastAPI runs them in its thread pool): drawing and simulating never block the loop."""
    import inspect

    routes = [r for r in plot_routes.router.routes if hasattr(r, "endpoint")]
    assert len(routes) == 8
    assert not any(inspect.iscoroutinefunction(r.endpoint) for r in routes)


def test_the_progress_picture_follows_a_decision(world: dict[str, Any]) -> None:
    """Cached by a fingerprint of its data: a proposal and a confirmation draw it anew."""
    client, h = world["client"], world["h"]
    before = _svg(client.get("/plots/operations/demo/progress.svg", headers=h["dvi"]))
    assert "confirmed: 0" in before
    assert client.get("/plots/operations/demo/progress.svg", headers=h["dvi"]).text == before  # cached
    cand = client.get("/api/remains/V2/candidates", headers=h["dvi"]).json()[0]
    ident = client.post("/api/identifications", json={"candidate_id": cand["id"]}, headers=h["dvi"]).json()
    assert "proposed: 1" in _svg(client.get("/plots/operations/demo/progress.svg", headers=h["dvi"]))
    assert client.post(f"/api/identifications/{ident['id']}/confirm", json={}, headers=h["reviewer"]).status_code == 200
    after = _svg(client.get("/plots/operations/demo/progress.svg", headers=h["dvi"]))
    assert "confirmed: 1" in after and "proposed: 1" in after


def test_codes_are_drawn_as_text_never_as_markup(world: dict[str, Any]) -> None:
    """Codes come from imported files: "$...$" is no mathtext, "<" and "&" no SVG markup."""
    from urllib.parse import quote

    from tests.servicekit import family_files

    client, h = world["client"], world["h"]
    suffix = "$\\frac$<b>&x"
    fam, prof = family_files(suffix)
    r = client.post("/api/operations/demo/imports/families", headers=h["intake"],
                    files={"families": ("f.csv", fam, "text/csv"), "profiles": ("p.csv", prof, "text/csv")})
    assert r.status_code == 201, r.text
    url = f"/plots/families/{quote('FT' + suffix, safe='')}/lr-distribution"
    svg = _svg(client.get(url + ".svg", headers=h["intake"]))  # parsed: well-formed XML
    assert "FT$\\frac$&lt;b&gt;&amp;x" in svg
    _png(client.get(url + ".png", headers=h["intake"]))
