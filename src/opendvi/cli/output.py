"""Shared output helpers of the CLI: JSON numbers, formats, consoles."""

from __future__ import annotations

import json
import math
from enum import StrEnum
from typing import Any

from rich.console import Console


class OutputFormat(StrEnum):
    table = "table"
    json = "json"


def jnum(x: float | None) -> float | str | None:
    """A float for JSON: -inf as "-inf" (case-json.md), nan as null."""
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return None
    if x == -math.inf:
        return "-inf"
    if x == math.inf:
        return "inf"
    return x


def print_json(data: Any) -> None:
    print(json.dumps(data, indent=2, allow_nan=False))


def console() -> Console:
    return Console(highlight=False, soft_wrap=False)


def fmt_log(x: float) -> str:
    return "-inf" if x == -math.inf else f"{x:.6f}"
