"""Shared output helpers of the CLI: JSON, formats, consoles."""

from __future__ import annotations

import json
import math
from enum import StrEnum
from typing import Any

from rich.console import Console


class OutputFormat(StrEnum):
    table = "table"
    json = "json"


def print_json(data: Any) -> None:
    print(json.dumps(data, indent=2, allow_nan=False))


def console() -> Console:
    return Console(highlight=False, soft_wrap=False)


def fmt_log(x: float) -> str:
    return "-inf" if x == -math.inf else f"{x:.6f}"
