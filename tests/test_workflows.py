"""The application layer (opendvi.workflows, docs/architecture.md): one serialiser of results and one
rule for an LR in text, shared by the CLI and the service; the CLI and the service give the same
numbers for the same case."""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from opendvi.data import demo_case_path
from opendvi.io.case_json import read_case
from opendvi.workflows import identify, results
from opendvi.workflows.results import format_lr
from tests.clikit import run as cli
from tests.servicekit import bearer, make_app, match, migrated_engine

DEMO = Path(demo_case_path())


# -- the LR in text ------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("log10_lr", "text"),
    [
        (None, "0"),  # the store keeps the log10 of an exclusion as null
        (-math.inf, "0"),
        (math.inf, "∞"),
        (math.nan, "-"),
        (0.0, "1"),
        (2.0, "100"),
        (math.log10(2471.0), "2471"),
        (math.log10(0.5), "0.5"),
        (-2.9, "0.001259"),  # four significant digits from 1e-3 ...
        (3.9, "7943"),  # ... up to 1e4
        (4.0, "1.00e+4"),
        (-3.0, "1.00e-3"),
        (-3.3, "5.01e-4"),
        (23.0792, "1.20e+23"),
        (-40.5, "3.16e-41"),
        (math.log10(9999.9), "1.00e+4"),  # four digits would round to 1e+04: the mantissa form
        (5.999999, "1.00e+6"),  # the mantissa is carried into the exponent, never 10.00e+5
        (400.0, "1.00e+400"),  # beyond the float range
    ],
)
def test_format_lr__one_rule(log10_lr: float | None, text: str) -> None:
    assert format_lr(log10_lr) == text


def test_format_lr__the_cli_tables_the_pages_and_the_reports_use_it() -> None:
    """One function: the CLI's table cells (from a natural-log LR), the service's views and the
    templates' ``lr`` filter, the evidence of a match."""
    from opendvi.cli.dvi_cmd import fmt_lr
    from opendvi.reports import evidence
    from opendvi.service import views

    assert views.lr_text is format_lr and evidence.lr_text is format_lr
    for log10 in (-50.0, -3.5, -1.0, 0.0, 0.30103, 3.999, 4.5, 23.0792, 350.0):
        assert fmt_lr(log10 * math.log(10.0)) == format_lr(log10)
    assert fmt_lr(None) == "-" and fmt_lr(-math.inf) == "0"


def test_lr_filter__registered_on_the_pages(tmp_path: Path) -> None:
    with migrated_engine("sqlite", tmp_path) as engine:
        app = make_app(engine, demo=False, users=False)
        env = app.state.templates.env
        assert env.filters["lr"] is format_lr
        assert env.from_string("{{ x|lr }} {{ y|lr }}").render(x=23.0792, y=None) == "1.20e+23 0"


# -- one serialiser ------------------------------------------------------------------------------------
def test_results__the_cli_prints_what_the_serialiser_gives() -> None:
    """``opendvi likelihood``, ``pairwise``, ``solve`` and ``match-remains --format json`` print the workflow's result
    through :mod:`opendvi.workflows.results`, numbers as case-json.md writes them."""
    case = read_case(DEMO)
    got = json.loads(cli("likelihood", DEMO, "--format", "json", check=True).stdout)
    assert got == json.loads(json.dumps(results.likelihood_json(identify.likelihoods(case))))
    got = json.loads(cli("pairwise", DEMO, "--format", "json", check=True).stdout)
    assert got == json.loads(json.dumps(results.pairwise_json(identify.pairwise(case))))
    got = json.loads(cli("match-remains", DEMO, "--format", "json", check=True).stdout)
    assert got == json.loads(json.dumps(results.remains_json(identify.match_remains(case))))
    got = json.loads(cli("solve", DEMO, "--format", "json", check=True).stdout)
    want = json.loads(json.dumps(results.solve_json(identify.solve(case))))
    got["summary"].pop("seconds"), want["summary"].pop("seconds")  # timings
    assert got == want
    assert got["summary"]["counts"]["identified"] > 0


def test_clean__json_numbers() -> None:
    assert results.clean({"a": [1.5, math.inf, -math.inf, math.nan], "b": "x", "c": 2}) == {
        "a": [1.5, "inf", "-inf", None], "b": "x", "c": 2}


# -- the CLI and the service on the same case ----------------------------------------------------------
@pytest.fixture(scope="module")
def svc(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    tmp = tmp_path_factory.mktemp("workflows")
    with migrated_engine("sqlite", tmp) as engine:
        app = make_app(engine)
        client = TestClient(app)
        yield {"app": app, "client": client, "intake": bearer(client, "intake"), "dvi": bearer(client, "dvi")}


def test_power__the_service_gives_the_json_of_the_cli(svc: dict[str, Any]) -> None:
    """``/api/power/families/F5`` and ``opendvi power --format json`` on the demo case (the family's
    untyped relatives as candidates, ranked by inclusion power, as the service ranks them): equal."""
    from opendvi.power import untyped_relatives

    fam = read_case(DEMO).family("F5")
    candidates = ",".join(untyped_relatives(fam, fam.missing[0]))
    r = svc["client"].get("/api/power/families/F5", headers=svc["intake"])
    assert r.status_code == 200, r.text
    out = cli("power", DEMO, "--family", "F5", "--candidates", candidates, "--rank-by", "inclusion",
              "--format", "json", check=True)
    assert r.json() == json.loads(out.stdout)
    assert r.json()[0]["next"], "F5 has untyped relatives to rank"


def test_matching_run__the_service_gives_the_numbers_and_texts_of_the_cli(svc: dict[str, Any]) -> None:
    """The service's matching run on the demo case and ``opendvi screen --format json`` with the same
    top-K and threshold: the same candidates, the same log10 LRs, the LR in the same text."""
    c, h = svc["client"], svc["dvi"]
    match(c, svc["app"], h, "demo", top_k=3, lr_threshold=1e4)
    out = json.loads(cli("screen", DEMO, "--top", "3", "--threshold", "1e4", "--format", "json",
                         check=True).stdout)
    compared = 0
    for rid, want in out["candidates"].items():
        r = c.get(f"/api/remains/{rid}/candidates", headers=h)
        assert r.status_code == 200, r.text
        got = {x["missing_person"]: x for x in r.json()}
        assert set(got) == {w["missing"] for w in want}, rid
        for rank, w in enumerate(want, start=1):  # the CLI lists each remains' candidates best first
            g = got[w["missing"]]
            assert (g["rank"], g["family"], g["exclusions"]) == (rank, w["family"], w["exclusions"])
            if w["log10_lr"] == "-inf":
                assert g["log10_lr"] is None
            else:
                assert g["log10_lr"] == pytest.approx(w["log10_lr"], rel=1e-12, abs=1e-12)
            assert g["lr"] == format_lr(None if w["log10_lr"] == "-inf" else w["log10_lr"])
            compared += 1
    assert compared >= 8
