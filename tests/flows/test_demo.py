"""`make demo`'s command, as a user runs it: Prefect without a server, local Ray, SQLite, RIFE on CPU."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest


@pytest.mark.slow
def test_demo_renders_then_renders_nothing(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "PREFECT_API_URL"}  # serverless, as on a laptop
    env["PREFECT_HOME"] = str(tmp_path / "prefect")
    toonfarm = str(Path(sys.executable).with_name("toonfarm"))
    outputs = []
    for _ in range(2):
        run = subprocess.run([toonfarm, "demo"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
        assert run.returncode == 0, run.stderr[-3000:]
        outputs.append(run.stdout.strip().splitlines())
    assert re.fullmatch(r"3 shots new, 0 unchanged, 0 failed; rendered 26 pairs, reused 0, failed 0; [0-9.]+ worker-s",
                        outputs[0][-1])  # fmt: skip
    assert outputs[1][-1] == "0 shots new, 3 unchanged, 0 failed; rendered 0 pairs, reused 26, failed 0; 0.0 worker-s"
    assert sorted(line.split(":")[0] for line in outputs[0] if "(new-version)" in line) == [
        "demo/sq010/sq010_sh0010", "demo/sq010/sq010_sh0020", "demo/sq010/sq010_sh0030"]
    assert all("(unchanged)" in line for line in outputs[1][1:-1])
    mp4s = sorted((tmp_path / "demo_out" / "demo" / "sq010").glob("*/v001/*.mp4"))
    assert len(mp4s) == 3 and not list((tmp_path / "demo_out" / "demo" / "sq010").glob("*/v002"))
    assert _processes_with(f"PREFECT_HOME={env['PREFECT_HOME']}") == []  # its temporary Prefect API went away


def _processes_with(variable: str) -> list[int]:
    """Pids of the live processes whose environment holds `variable`."""
    found = []
    for proc in Path("/proc").iterdir():
        try:
            if proc.name.isdigit() and variable.encode() in (proc / "environ").read_bytes().split(b"\0"):
                found.append(int(proc.name))
        except OSError:
            continue
    return found
