"""Runs the reliability corpus (tests/reliability/corpus/cases.py): every bad input gives its one line and
its exit status, and one bad shot never stops the others. The per-shot cases share one batch, which also
shows that a shared farm's files get the farm's umask (on the driver and on every Ray worker) and that pairs
another run left on disk count as reused, not rendered."""

from __future__ import annotations

import os
import re
import shutil
import stat
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from cluster import connect
from flows.cli import app

from .corpus.cases import CASES, Case, keyframe

runner = CliRunner()
SHOT_CASES = [c for c in CASES if c.kind == "shot"]
GOOD = {"good1": ((0, 0), (4, 20)), "good2": ((0, 5), (4, 25), (8, 45))}  # code: (frame, drawing's shade)


def _pattern(case: Case, **where: str) -> re.Pattern[str]:
    text = case.line
    for name, value in where.items():
        text = text.replace("{" + name + "}", re.escape(value))
    return re.compile(text)


def test_the_corpus_covers_the_issue() -> None:
    assert len(CASES) >= 40 and len({c.id for c in CASES}) == len(CASES)
    assert {c.origin for c in CASES} >= {"#3", "#5", "#6", "#7", "earlier"}


@pytest.mark.parametrize("case", [c for c in CASES if c.kind == "shotlist"], ids=lambda c: c.id)
def test_a_bad_shot_list_is_one_line_and_exit_2(case: Case, tmp_path: Path) -> None:
    shotlist = case.build(tmp_path)
    result = runner.invoke(app, ["plan", str(shotlist)], env=case.env)
    assert result.exit_code == case.exit, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, lines
    assert _pattern(case, list=str(shotlist)).fullmatch(lines[0].removeprefix("toonfarm: ")), lines[0]
    assert lines[0].startswith("toonfarm: ")


@pytest.mark.parametrize("case", [c for c in CASES if c.kind == "command"], ids=lambda c: c.id)
def test_a_bad_command_is_one_line(case: Case, tmp_path: Path) -> None:
    args, env = case.build(tmp_path)
    result = runner.invoke(app, args, env={**env, **case.env})
    assert result.exit_code == case.exit, result.output
    pattern = _pattern(case, list="")
    if case.exit == 0:
        assert any(pattern.fullmatch(line) for line in result.stdout.splitlines()), result.stdout
    else:
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("toonfarm: "), lines
        assert pattern.fullmatch(lines[0].removeprefix("toonfarm: ")), lines[0]
    assert not (tmp_path / "pwned").exists()  # no checkpoint ran its code
    assert not (tmp_path / "out").exists()  # a bad setting stops before anything is written


# ----------------------------------------------------------------------------- one batch, many bad shots


@dataclass
class Batch:
    folder: Path
    shotlist: Path
    out: Path
    exit_code: int
    stdout: str
    errors: list[str]
    index: dict[str, int]  # case id -> its place in the shot list


def _relative(entry: dict[str, Any], here: str) -> dict[str, Any]:
    """The case's shot entry with its paths under the case's own folder."""
    out = dict(entry)
    source = out.get("source")
    if isinstance(source, str):
        out["source"] = here + source
    elif isinstance(source, list):
        out["source"] = [{**k, "image": here + k["image"]} for k in source]
    for key in ("xsheet", "lut"):
        if key in out:
            out[key] = here + out[key]
    return out


def _good_shots(folder: Path) -> list[dict[str, Any]]:
    shots = []
    for code, keys in GOOD.items():
        images = [{"frame": f, "image": keyframe(folder / "good" / f"{code}_{f}.png", shade).relative_to(folder).as_posix()}
                  for f, shade in keys]  # fmt: skip
        shots.append({"code": code, "source": images})
    return shots


@pytest.fixture(scope="module")
def batch(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Batch]:
    """Every `shot` case as one shot of one render, between good shots; the farm's umask 027, the process's
    077 (so that a file which escaped the setting would show it)."""
    folder = tmp_path_factory.mktemp("corpus-batch")
    shots = _good_shots(folder)
    index = {}
    for case in SHOT_CASES:
        (folder / case.id).mkdir()
        index[case.id] = len(shots)
        shots.append({"code": case.id, **_relative(case.build(folder / case.id), f"{case.id}/")})
    shotlist = folder / "shots.yaml"
    shotlist.write_text(yaml.safe_dump({"defaults": {"fps": 24, "backend": "crossfade"}, "shots": shots}, sort_keys=False))
    out = folder / "out"
    before = os.umask(0o077)
    ray_dir = tempfile.mkdtemp(prefix="tfc-", dir="/tmp")
    try:
        # Ray started here, before the farm's umask is set, as on a node that runs a cluster's workers.
        with connect(num_cpus=2, temp_dir=ray_dir):
            result = runner.invoke(app, ["render", str(shotlist), "-o", str(out)], env={"TOONFARM_UMASK": "027"})
    finally:
        os.umask(before)
        shutil.rmtree(ray_dir, ignore_errors=True)
    errors = [line.removeprefix("error: ") for line in result.stderr.splitlines() if line.startswith("error: ")]
    yield Batch(folder, shotlist, out, result.exit_code, result.stdout, errors, index)


@pytest.mark.parametrize("case", SHOT_CASES, ids=lambda c: c.id)
def test_a_bad_shot_fails_alone_in_one_line(case: Case, batch: Batch) -> None:
    label = f"{batch.shotlist}: shots[{batch.index[case.id]}]"
    mine = [e for e in batch.errors if e.startswith(label + ".") or f"untitled/main/{case.id}" in e]
    assert len(mine) == 1, (mine, batch.errors)
    pattern = _pattern(case, shot=label, here=f"{case.id}/", list=str(batch.shotlist))
    assert pattern.fullmatch(mine[0]), mine[0]


def test_the_good_shots_publish_beside_the_bad_ones(batch: Batch) -> None:
    assert batch.exit_code == 1, batch.stdout
    for code in GOOD:
        assert re.search(rf"^untitled/main/{code}: v001 \(new-version\) ", batch.stdout, re.M), batch.stdout
    assert len(batch.errors) == len(SHOT_CASES), batch.errors
    assert "Traceback" not in batch.stdout


def test_everything_the_farm_writes_has_its_umask(batch: Batch) -> None:
    """umask 027: folders 0750, files 0640, on the driver (keyframes, versions, the SQLite file) and on the Ray
    workers (render folders and frames), though the process itself ran under 077."""
    modes: dict[int, list[str]] = {}
    for path in [batch.out, *batch.out.rglob("*")]:
        mode = stat.S_IMODE(path.lstat().st_mode)
        expected = 0o750 if path.is_dir() else 0o640
        if mode != expected:
            modes.setdefault(mode, []).append(str(path.relative_to(batch.out)))
    assert not modes, {oct(m): paths[:5] for m, paths in modes.items()}
    kinds = {p.relative_to(batch.out).parts[0] for p in batch.out.iterdir()}
    assert {"store", "untitled", "toonfarm.sqlite"} <= kinds
    assert list(batch.out.glob("store/renders/*/*/0001.png")) and list(batch.out.glob("store/keyframes/*.png"))


def test_pairs_found_on_disk_count_as_reused(batch: Batch) -> None:
    """A second batch over the same output root whose shot DB does not know the renders (another farm's
    batch that rendered them a moment before, in effect): its workers find the frames on disk, and it says
    it reused them rather than rendered them."""
    first = re.search(r"; rendered (\d+) pairs, reused (\d+), failed 0; ", batch.stdout)
    assert first and int(first.group(1)) == 3, batch.stdout  # good1, good2; the LUT case shares good1's key
    again = batch.folder / "again.yaml"
    shots = _good_shots(batch.folder)
    again.write_text(yaml.safe_dump({"defaults": {"fps": 24, "backend": "crossfade", "sequence": "sq020"},
                                     "shots": shots}))  # fmt: skip
    other_db = f"sqlite:///{batch.folder / 'other.sqlite'}"
    result = runner.invoke(app, ["render", str(again), "-o", str(batch.out), "--db", other_db])
    assert result.exit_code == 0, result.output
    assert "; rendered 0 pairs, reused 3, failed 0; " in result.stdout.strip().splitlines()[-1]
