"""The `toonfarm` CLI: exact outputs, exit codes (0 ok, 1 some shots failed, 2 bad invocation), no tracebacks."""

from __future__ import annotations

import json
import re
import socket
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

import shot_db
from flows.cli import EXIT_BUG, EXIT_TRANSIENT, _ErrorBoundary, app
from tooncrafter_model.errors import TransientError, UserError

from .conftest import make_shots

runner = CliRunner()


def test_plan_json_is_the_documented_dry_run(tmp_path: Path) -> None:
    shots = make_shots(tmp_path, {"sh0010": {"timing": [2, 3, 4]}, "sh0020": {"timing": [2, 2, 2, 2], "cut_at": 4}})
    result = runner.invoke(app, ["plan", str(shots.path), "--json"])
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    margins = [shot["ingest"].pop("margin") for shot in doc["shots"]]
    clean = {"timecode": None, "gaps": [], "disagreements": [], "notes": [], "warnings": []}
    assert doc == {
        "shots": [
            {"code": "sh0010", "cuts": [], "keyframes": [0, 2, 5],
             "pairs": [{"a": 0, "b": 2, "inbetweens": 1}, {"a": 2, "b": 5, "inbetweens": 2}],
             "first_frame": 0, "frames": 9, "ingest": clean},
            {"code": "sh0020", "cuts": [4], "keyframes": [0, 2, 4, 6],
             "pairs": [{"a": 0, "b": 2, "inbetweens": 1}, {"a": 4, "b": 6, "inbetweens": 1}],
             "first_frame": 0, "frames": 8, "ingest": clean},
        ]
    }
    for margin in margins:  # lossless holds score 0; a pose change far above the floor of 12
        assert (margin["threshold"], margin["hold"]) == (12.0, 0.0) and margin["change"] == margin["ratio"] > 40
    assert not list(tmp_path.glob("**/keyframes"))  # a dry run stores nothing


def test_plan_reports_bad_media_and_still_plans_the_rest(tmp_path: Path) -> None:
    shots = make_shots(tmp_path, {"ok": {"timing": [2, 2]}, "bad": {"timing": [2, 2]}})
    (tmp_path / "rough" / "bad.mkv").write_bytes(b"not a video")
    result = runner.invoke(app, ["plan", str(shots.path), "--json"])
    assert result.exit_code == 1
    doc = json.loads(result.stdout)
    assert [s["code"] for s in doc["shots"]] == ["ok"]
    assert doc["failed"][0]["shot"] == "test/sq010/bad"
    assert result.stderr.startswith(f"toonfarm: {shots.path}: shots[1].source: rough/bad.mkv")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("shots: [{code: sh1, source: a.mp4, fps: abc}]", "shots.yaml: shots[0].fps: "),
        ("shots: [{code: sh1, fps: 24}]", "shots.yaml: shots[0].source: "),
        ("shots: [{code: sh1, source: ../../etc/passwd.mp4, fps: 24}]", "shots.yaml: shots[0].source: "),
        ("shots: [{code: sh1, source: a.mp4, fps: 24", "shots.yaml: "),
    ],
)
def test_bad_shot_list_is_one_line_and_exit_2(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "shots.yaml"
    path.write_text(text)
    for command in (["plan", str(path)], ["render", str(path), "-o", str(tmp_path / "out")]):
        result = runner.invoke(app, command)
        assert result.exit_code == 2, result.output
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith(f"toonfarm: {tmp_path}/{message}"), lines
        assert "Traceback" not in result.output
    assert not (tmp_path / "out").exists()


def test_bad_settings_and_usage_exit_2(tmp_path: Path) -> None:
    result = runner.invoke(app, ["render", str(tmp_path / "x.yaml"), "--actors", "0"])
    assert result.exit_code == 2 and result.stderr.strip() == "toonfarm: setting actors: Input should be greater than or equal to 1 (got 0)"
    result = runner.invoke(app, ["render", str(tmp_path / "x.yaml"), "--db", "nonsense"])
    assert result.exit_code == 2 and "setting db: Value error, not a database URL: 'nonsense'" in result.stderr
    result = runner.invoke(app, ["nosuchcommand"])
    assert result.exit_code == 2
    result = runner.invoke(app, ["models", "convert", str(tmp_path / "m.ckpt"), str(tmp_path / "m.bin")])
    assert result.exit_code == 2 and result.stderr.strip() == f"toonfarm: {tmp_path / 'm.bin'}: output must end in .safetensors"


@pytest.mark.usefixtures("prefect_harness", "ray_module")
def test_render_history_and_lineage(tmp_path: Path) -> None:
    shots = make_shots(tmp_path / "in", {"sh0010": {"timing": [2, 2, 2]}, "sh0020": {"timing": [3, 3]}})
    shots.doc["shots"].append({"code": "sh0030", "source": "rough/none.mkv"})
    shots.write()
    out = tmp_path / "out"
    result = runner.invoke(app, ["render", str(shots.path), "-o", str(out), "--actors", "2"])
    assert result.exit_code == 1, result.output  # one shot's media is missing: the rest are rendered
    summary = result.stdout.strip().splitlines()[-1]
    assert re.fullmatch(r"2 shots new, 0 unchanged, 1 failed; rendered 3 pairs, reused 0, failed 0; [0-9.]+ worker-s",
                        summary), summary  # fmt: skip
    errors = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    assert errors == [f"error: {shots.path}: shots[2].source: rough/none.mkv: video file not found"]
    del shots.doc["shots"][2]
    shots.write()
    result = runner.invoke(app, ["render", str(shots.path), "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert result.stdout.strip().splitlines()[-1].startswith("0 shots new, 2 unchanged, 0 failed; rendered 0 pairs, reused 3")

    result = runner.invoke(app, ["status", "-o", str(out), "--json"])
    assert result.exit_code == 0, result.output
    latest, first = json.loads(result.stdout)
    assert (latest["status"], first["status"], first["trigger"]) == ("finished", "failed", "cli")
    assert sorted((s["shot"], s["status"], s["version"]) for s in first["shots"]) == [
        ("test/sq010/sh0010", "new-version", 1), ("test/sq010/sh0020", "new-version", 1), ("test/sq010/sh0030", "failed", None)]
    assert first["shots"][-1]["error"].endswith("rough/none.mkv: video file not found")
    assert first["worker_seconds"] > 0
    assert first["worker_seconds"] == pytest.approx(sum(s["worker_seconds"] for s in first["shots"]))
    assert latest["worker_seconds"] == 0 and first["name"].startswith("shots.yaml ")
    result = runner.invoke(app, ["status", "-o", str(out)])
    assert result.exit_code == 0 and "test/sq010/sh0030" in result.stdout and "failed" in result.stdout

    result = runner.invoke(app, ["history", "sh0010", "-o", str(out), "--json"])
    assert result.exit_code == 0, result.output
    (v1,) = json.loads(result.stdout)
    assert (v1["number"], v1["frame_count"], len(v1["renders"])) == (1, 6, 2)
    assert [o["kind"] for o in v1["outputs"]] == ["png", "h264"]
    frame = Path(v1["outputs"][0]["path"]) / "sh0010.0002.png"
    result = runner.invoke(app, ["lineage", str(frame), "-o", str(out)])
    assert result.exit_code == 0, result.output
    text = result.stdout
    assert "test/sq010/sh0010 v001" in text and "in-between 1 of 1" in text and "(pair 0 -> 2)" in text
    assert "backend    rife  weights 1195a2f0de8fcc06" in text and "seed 0" in text
    assert f"from {shots.path.parent / 'rough' / 'sh0010.mkv'}#frame=0" in text  # the keyframe's own file
    assert "lut        none" in text and "rendered by this version's flow run" in text
    assert f"on host {socket.gethostname()} (node " in text
    result = runner.invoke(app, ["lineage", str(frame), "-o", str(out), "--json"])
    (found,) = json.loads(result.stdout)
    assert found["keyframe"] is None and found["render"]["host"] == socket.gethostname()
    assert found["lut"] == {"path": None, "sha256": None}
    assert found["renders"][found["render"]["render_key"]]["reused"] is False  # rendered by v001's own run
    assert found["version"]["keyframes"][0]["origin"].endswith("rough/sh0010.mkv#frame=0")
    result = runner.invoke(app, ["lineage", str(tmp_path / "nothing.png"), "-o", str(out)])
    assert result.exit_code == 2 and result.stderr.strip() == f"toonfarm: {tmp_path / 'nothing.png'}: no such file"


def test_reads_never_migrate_and_name_the_upgrade(tmp_path: Path) -> None:
    path = tmp_path / "shots.sqlite"
    url = shot_db.default_url(path)
    result = runner.invoke(app, ["history", "sh0010", "--db", url])
    assert result.exit_code == 2 and result.stderr.strip() == f"toonfarm: shot DB {path}: no such file (nothing rendered there yet?)"
    assert not path.exists()
    shot_db.upgrade(url, "0001")  # a shot DB an older toonfarm wrote
    for command in (["history", "sh0010"], ["lineage", str(path)]):
        result = runner.invoke(app, [*command, "--db", url])
        assert result.exit_code == 2, result.output
        assert result.stderr.strip() == (
            f"toonfarm: shot DB at {url} is at revision 0001, this toonfarm reads {shot_db.head_revision()}: "
            "run `toonfarm db upgrade`"
        )
    engine = shot_db.make_engine(url)
    assert shot_db.current_revision(engine) == "0001"  # the reads changed nothing
    engine.dispose()
    result = runner.invoke(app, ["db", "upgrade", "--db", url])
    assert result.exit_code == 0 and result.stdout.strip() == f"shot DB at {url} is at the current schema"
    result = runner.invoke(app, ["history", "sh0010", "--db", url])
    assert result.exit_code == 2 and result.stderr.strip() == "toonfarm: shot sh0010: not in the shot DB"


@pytest.mark.postgres
def test_a_shot_db_that_does_not_answer_is_a_transient_failure() -> None:
    result = runner.invoke(app, ["history", "sh0010", "--db", "postgresql+psycopg://root@127.0.0.1:1/test"])
    assert result.exit_code == EXIT_TRANSIENT, result.output
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith("toonfarm: shot DB at postgresql+psycopg://root@127.0.0.1:1/test: unavailable (")


def _boundary(error: Exception) -> typer.Typer:
    """A CLI behind the toonfarm error boundary whose one command raises `error`."""
    cli = typer.Typer(cls=_ErrorBoundary, add_completion=False)

    @cli.command()
    def fail() -> None:
        raise error

    @cli.command()
    def other() -> None:
        pass

    return cli


def test_a_bug_shows_as_a_bug_and_debug_shows_its_traceback(monkeypatch: pytest.MonkeyPatch) -> None:
    cli = _boundary(KeyError("frames"))
    result = runner.invoke(cli, ["fail"])
    assert result.exit_code == EXIT_BUG
    assert result.stderr.splitlines() == [
        "toonfarm: unexpected KeyError: 'frames'",
        "toonfarm: this is a bug (no error toonfarm explains); run again with TOONFARM_DEBUG=1 for the traceback, "
        "and report it",
    ]
    monkeypatch.setenv("TOONFARM_DEBUG", "1")
    result = runner.invoke(cli, ["fail"])
    assert isinstance(result.exception, KeyError)  # raised through: Python prints the traceback


@pytest.mark.parametrize(
    ("error", "status"), [(UserError("shots.yaml: shots[0].fps: bad"), 2), (TransientError("db gone"), EXIT_TRANSIENT)]
)
def test_toonfarm_errors_are_one_line(error: Exception, status: int) -> None:
    result = runner.invoke(_boundary(error), ["fail"])
    assert result.exit_code == status and result.stderr == f"toonfarm: {error}\n"


def test_plan_shows_margins_gaps_sheet_disagreements_and_warnings(tmp_path: Path) -> None:
    import cv2
    import numpy as np

    from tasks.synthetic import Capture, animate, line_test, write_video

    anim = animate([2, 3, 4, 2], seed=7)
    for k in anim.keyframes:
        (tmp_path / "seq").mkdir(exist_ok=True)
        cv2.imwrite(str(tmp_path / "seq" / f"sh10.{1001 + k:04d}.png"), np.ascontiguousarray(anim.frames[k][..., ::-1]))
    write_video(anim.frames, tmp_path / "sh20.mp4", 24, lossless=True)
    (tmp_path / "sh20.csv").write_text("frame,drawing\n0,A\n2,B\n7,C\n9,D\n")
    noisy = line_test([2, 2, 4, 1, 3, 2, 4, 2, 1, 1, 2, 4], seed=0, capture=Capture(grain=8.0, flicker=0.06))
    write_video(noisy.frames, tmp_path / "sh30.mp4", 24, crf=35)
    (tmp_path / "shots.yaml").write_text(
        "defaults: {fps: 24}\nshots:\n"
        "  - {code: sh10, source: seq/sh10.####.png}\n"
        "  - {code: sh20, source: sh20.mp4, xsheet: sh20.csv}\n"
        "  - {code: sh30, source: sh30.mp4}\n"
    )
    result = runner.invoke(app, ["plan", str(tmp_path / "shots.yaml")])
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert "untitled/main/sh10: missing frames 1002, 1004-1005, 1007-1009 hold the drawing before them" in lines
    assert "untitled/main/sh20: exposure sheet: frame 5: detection sees a new drawing, the sheet holds B" in lines
    assert "untitled/main/sh20: exposure sheet: frame 7: the sheet starts C, detection sees a hold" in lines
    assert any("│ 1001-1010 " in line and "│ - < 12.0 <= " in line for line in lines), result.stdout  # no holds scored
    (warning,) = result.stderr.splitlines()
    assert warning.startswith("toonfarm: warning: untitled/main/sh30: thin detection margin: strongest hold ")
