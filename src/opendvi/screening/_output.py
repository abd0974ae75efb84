"""Writing and reading screening results.

Parquet (``.parquet``) or CSV (``.csv``), one row per kept pairing, sorted by
remains (case order) then rank:

=============  ========  =====================================================
column         type      meaning
=============  ========  =====================================================
remains        string    remains id
rank           int32     1 = best candidate of this remains
missing        string    missing person id
family         string    the missing person's family id
lr             float64   pairwise likelihood ratio (0 = excluded; inf beyond 1e308)
log10_lr       float64   log10 of the LR (-inf for 0)
exclusions     int16     markers Mendelian-incompatible without mutation
=============  ========  =====================================================

A case with lineage data (Y-STR, mtDNA) adds, after these, ``lr_autosomal``,
``lr_Y``, ``lr_mt`` (float64: each system's LR, those of the case; ``lr`` is
then the combined LR) and ``mismatches_Y``, ``mismatches_mt`` (int16: loci
of the Y haplotype, sites of the mtDNA range at which the remains differ
from the nearest reference of the lineage), as ``opendvi pairwise`` gives them.

The Parquet file's key-value metadata holds ``opendvi.top``,
``opendvi.threshold`` and ``opendvi.notes`` (JSON). CSV writes ``-inf`` and
``inf`` as such. The results as JSON (``opendvi screen --format json``):
:func:`opendvi.workflows.results.screen_json`.
"""

from __future__ import annotations

import csv
import json
import os
from pathlib import Path
from typing import Any

import numpy as np

from opendvi.core.rules import safe_exp
from opendvi.screening._encode import ScreeningError
from opendvi.screening._engine import ScreenResult

COLUMNS = ("remains", "rank", "missing", "family", "lr", "log10_lr", "exclusions")


def _system_columns(res: ScreenResult) -> dict[str, Any]:
    """``lr_<system>`` and ``mismatches_<lineage system>`` (lineage data only)."""
    out: dict[str, Any] = {}
    if res.log_lr_by_system is None or res.mismatches is None:
        return out
    for j, sy in enumerate(res.systems):
        out[f"lr_{sy}"] = safe_exp(np.asarray(res.log_lr_by_system[:, j], dtype=float))
    for j, sy in enumerate(res.lineage_systems):
        out[f"mismatches_{sy}"] = np.asarray(res.mismatches[:, j], dtype=np.int16)
    return out


def _columns(res: ScreenResult) -> dict[str, Any]:
    rid = np.asarray(res.remains_ids, dtype=object)
    mid = np.asarray(res.missing_ids, dtype=object)
    fid = np.asarray(res.family_ids, dtype=object)
    lr = safe_exp(np.asarray(res.log_lr, dtype=float))
    return {
        "remains": rid[res.remains] if len(res) else np.array([], dtype=object),
        "rank": res.rank,
        "missing": mid[res.rows] if len(res) else np.array([], dtype=object),
        "family": fid[res.rows] if len(res) else np.array([], dtype=object),
        "lr": lr,
        "log10_lr": res.log10_lr,
        "exclusions": res.exclusions,
        **_system_columns(res),
    }


def write_results(res: ScreenResult, path: str | Path) -> None:
    """Write the kept pairings to ``path`` (``.parquet`` or ``.csv``), atomically."""
    p = Path(path)
    suffix = p.suffix.lower()
    if suffix not in (".parquet", ".csv"):
        raise ScreeningError(f"{p}: results are written as .parquet or .csv, found {suffix or 'no suffix'!r}")
    cols = _columns(res)
    extra = [c for c in cols if c not in COLUMNS]
    tmp = p.with_name(p.name + ".tmp")
    if suffix == ".parquet":
        try:
            import pyarrow as pa
            import pyarrow.parquet as pq
        except ImportError:  # pragma: no cover - depends on the environment
            raise ScreeningError(
                "Parquet output needs pyarrow: pip install 'opendvi[screening]', or use .csv"
            ) from None
        table = pa.table(
            {
                "remains": pa.array(cols["remains"], type=pa.string()),
                "rank": pa.array(cols["rank"], type=pa.int32()),
                "missing": pa.array(cols["missing"], type=pa.string()),
                "family": pa.array(cols["family"], type=pa.string()),
                "lr": pa.array(cols["lr"], type=pa.float64()),
                "log10_lr": pa.array(cols["log10_lr"], type=pa.float64()),
                "exclusions": pa.array(cols["exclusions"], type=pa.int16()),
                **{
                    c: pa.array(cols[c], type=pa.float64() if c.startswith("lr_") else pa.int16())
                    for c in extra
                },
            }
        )
        meta = {
            b"opendvi.format": b"opendvi-screen-results/1",
            b"opendvi.top": str(res.top).encode(),
            b"opendvi.threshold": json.dumps(res.threshold).encode(),
            b"opendvi.notes": json.dumps(res.notes).encode(),
        }
        table = table.replace_schema_metadata(meta)
        pq.write_table(table, tmp, compression="zstd")
    else:
        with open(tmp, "w", newline="", encoding="utf-8") as fh:
            w = csv.writer(fh)
            w.writerow(COLUMNS + tuple(extra))
            for i in range(len(res)):
                w.writerow(
                    [
                        cols["remains"][i],
                        int(cols["rank"][i]),
                        cols["missing"][i],
                        cols["family"][i],
                        repr(float(cols["lr"][i])),
                        repr(float(cols["log10_lr"][i])),
                        int(cols["exclusions"][i]),
                        *(repr(float(cols[c][i])) if c.startswith("lr_") else int(cols[c][i]) for c in extra),
                    ]
                )
    os.replace(tmp, p)


def read_results(path: str | Path) -> list[dict[str, Any]]:
    """The rows of a results file (``.parquet`` or ``.csv``) as dicts."""
    p = Path(path)
    if p.suffix.lower() == ".parquet":
        import pyarrow.parquet as pq

        rows: list[dict[str, Any]] = pq.read_table(p).to_pylist()
        return rows
    out = []
    with open(p, newline="", encoding="utf-8") as fh:
        for row in csv.DictReader(fh):
            out.append(
                {
                    "remains": row["remains"],
                    "rank": int(row["rank"]),
                    "missing": row["missing"],
                    "family": row["family"],
                    "lr": float(row["lr"]),
                    "log10_lr": float(row["log10_lr"]),
                    "exclusions": int(row["exclusions"]),
                    **{
                        k: float(v) if k.startswith("lr_") else int(v)
                        for k, v in row.items()
                        if k.startswith(("lr_", "mismatches_"))
                    },
                }
            )
    return out
