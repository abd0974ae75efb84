"""Matching workers run at a lower CPU priority than the service (``cli/worker_cmd.lower_priority``)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

CHILD = "import os; from opendvi.cli.worker_cmd import lower_priority; before = os.nice(0); lower_priority(); " \
        "print(os.nice(0) - before)"


@pytest.mark.skipif(not hasattr(os, "nice"), reason="no nice() here")
@pytest.mark.parametrize(("setting", "expected"), [(None, 10), ("3", 3), ("0", 0)])
def test_workers_yield_to_the_service(setting: str | None, expected: int) -> None:
    env = {k: v for k, v in os.environ.items() if k != "OPENDVI_WORKER_NICE"}
    if setting is not None:
        env["OPENDVI_WORKER_NICE"] = setting
    before = os.nice(0)
    out = subprocess.run([sys.executable, "-c", CHILD], env=env, capture_output=True, text=True, check=True)
    assert int(out.stdout) == min(expected, 19 - before)  # nice stops at 19
