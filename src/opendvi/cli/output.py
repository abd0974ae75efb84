"""Shared output helpers of the CLI: JSON numbers, formats, consoles."""

from __future__ import annotations

import json
import math
from enum import StrEnum
from typing import Any

from rich.console import Console

from opendvi.core.rules import json_number

#: A float for JSON (-inf as "-inf", nan as null): :func:`opendvi.core.rules.json_number`.
jnum = json_number


class OutputFormat(StrEnum):
    table = "table"
    json = "json"


def print_json(data: Any) -> None:
    print(json.dumps(data, indent=2, allow_nan=False))


def console() -> Console:
    return Console(highlight=False, soft_wrap=False)


def fmt_log(x: float) -> str:
    return "-inf" if x == -math.inf else f"{x:.6f}"
