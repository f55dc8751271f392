"""`toonfarm qa`: scores for any in-betweens, exit 0 clean, 1 flagged, 2 bad input (one line naming the file)."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from flows.cli import app
from tasks.synthetic import inbetween_case
from tooncrafter_model.defects import inject
from tooncrafter_model.frames import write_frame

runner = CliRunner()
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def drawings(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Keyframes a.png, b.png; clean in-betweens c1-c3; ghosted ones g1-g3; an all-black frame."""
    folder = tmp_path_factory.mktemp("qa")
    case = inbetween_case(0.25, 3, start=0.3, width=256, height=160, seed=4)
    write_frame(folder / "a.png", case.key_a)
    write_frame(folder / "b.png", case.key_b)
    for i, frame in enumerate(case.truth):
        write_frame(folder / f"c{i + 1}.png", frame)
    for i, frame in enumerate(inject("ghost", case.key_a, case.key_b, case.times, case.truth, seed=1)):
        write_frame(folder / f"g{i + 1}.png", frame)
    write_frame(folder / "black.png", np.zeros_like(case.key_a))
    write_frame(folder / "small.png", case.key_a[:40])
    (folder / "broken.png").write_bytes(b"not a png")
    return folder


def qa(folder: Path, *names: str) -> list[str]:
    return ["qa", *(str(folder / n) if n.endswith(".png") else n for n in names)]


def test_clean_inbetweens_exit_0_with_a_score_table(drawings: Path) -> None:
    result = runner.invoke(app, qa(drawings, "a.png", "b.png", "c1.png", "c2.png", "c3.png"))
    assert result.exit_code == 0, result.output
    assert "tone" in result.stdout and "vanish" in result.stdout and "c3.png" in result.stdout
    assert result.stdout.strip().splitlines()[-1].startswith("clean (")


def test_flagged_inbetweens_exit_1_naming_each_file_and_score(drawings: Path) -> None:
    result = runner.invoke(app, qa(drawings, "a.png", "b.png", "g1.png", "g2.png", "g3.png"))
    assert result.exit_code == 1, result.output
    lines = result.stdout.strip().splitlines()
    for name in ("g1.png", "g2.png", "g3.png"):
        assert any(line.startswith(f"{drawings / name}: ghost ") and " > 0.1" in line for line in lines), lines
    assert lines[-1].startswith("flagged: 3 of 3 frames")


def test_hard_problems_name_the_file(drawings: Path) -> None:
    result = runner.invoke(app, qa(drawings, "a.png", "b.png", "c1.png", "black.png", "c3.png", "--json"))
    assert result.exit_code == 1
    doc = json.loads(result.stdout)
    assert doc["flagged"] is True and doc["problems"] == [f"{drawings / 'black.png'}: all black"]


def test_json_lists_every_frame_with_its_time_scores_and_flags(drawings: Path) -> None:
    args = qa(drawings, "a.png", "b.png", "c2.png", "g3.png", "--times", "0.5,0.75", "--threshold", "ghost=0.3")
    args.append("--json")
    result = runner.invoke(app, args)
    assert result.exit_code == 1, result.output
    doc = json.loads(result.stdout)
    assert doc["thresholds"]["ghost"] == 0.3 and doc["thresholds"]["tone"] == 1.0
    first, second = doc["frames"]
    assert first["file"] == str(drawings / "c2.png") and first["t"] == 0.5
    assert not any(f.startswith("ghost ") for f in first["flags"])  # (its ghosted neighbour makes it flicker)
    assert second["file"] == str(drawings / "g3.png") and second["t"] == 0.75
    assert any(f.startswith("ghost ") and f.endswith(" > 0.3") for f in second["flags"])
    assert set(first) >= {"tone", "flicker", "ghost", "lines", "vanish", "motion"}


@pytest.mark.parametrize(
    ("names", "message"),
    [
        (("a.png", "b.png", "missing.png"), "{d}/missing.png: image file not found"),
        (("a.png", "b.png", "broken.png"), "{d}/broken.png: not a readable image (supported: PNG, JPEG, TIFF, TGA, BMP)"),
        (("a.png", "small.png", "c1.png"), "{d}/small.png: 256x40 differs from {d}/a.png (256x160)"),
        (("a.png", "b.png", "small.png"), "{d}/small.png: 256x40 differs from the keyframes (256x160)"),
        (("a.png", "b.png", "c1.png", "--times", "0.5,0.6"), "--times: 2 times for 1 in-betweens"),
        (("a.png", "b.png", "c1.png", "--times", "1.5"),
         "--times: every time must lie strictly between 0 and 1, got 1.5"),
        (("a.png", "b.png", "c1.png", "--threshold", "blur=1"),
         "--threshold 'blur=1': expected NAME=VALUE with NAME one of tone, flicker, ghost, lines, vanish"),
        (("a.png", "b.png", "c1.png", "--threshold", "ghost=-1"), "--threshold ghost: must be a number > 0, got -1.0"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(drawings: Path, names: tuple[str, ...], message: str) -> None:
    result = runner.invoke(app, qa(drawings, *names))
    assert result.exit_code == 2, result.output
    assert result.stderr.strip().splitlines() == [f"toonfarm: {message.format(d=drawings)}"]
    assert "Traceback" not in result.output


def test_qa_runs_without_ray_torch_or_prefect(drawings: Path) -> None:
    script = textwrap.dedent(
        f"""
        import json, sys
        sys.path.insert(0, {str(ROOT)!r})
        from typer.testing import CliRunner
        from flows.cli import app
        result = CliRunner().invoke(app, {qa(drawings, "a.png", "b.png", "c1.png", "--json")!r})
        assert result.exit_code == 1 or result.exit_code == 0, result.output
        print(json.dumps(sorted(m for m in ("ray", "torch", "prefect") if m in sys.modules)))
        """
    )
    run = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-2000:]
    assert json.loads(run.stdout.strip().splitlines()[-1]) == []
