"""The dashboard's words: run names, tags, artifact keys, the summary line, the failed run's message and the
shot table (the live behaviour in a real browser: tests/dashboard/test_batch_dashboard.py)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from pathlib import Path

from tasks.contact import THUMB_NAME
from tasks.dashboard import _Row, artifact_key, run_name, run_tags, shot_table
from tasks.publish import ShotOutcome
from tasks.history import cost
from tasks.report import BatchReport
from tasks.settings import Settings
from tasks.shotlist import ShotList

WHEN = datetime(2026, 11, 27, 2, 0)


def _shots(write_shotlist: Callable[..., ShotList]) -> ShotList:
    return write_shotlist(
        [{"code": "sh0010", "source": "a.mp4"}, {"code": "sh0020", "source": "a.mp4"},
         {"code": "sh0030", "source": "a.mp4", "show": "Other.Show", "sequence": "sq020"}],  # fmt: skip
        {"show": "pilot", "sequence": "sq010", "fps": 24},
    )


def test_runs_are_named_after_their_batch_and_tagged_by_show_sequence_and_trigger(
    write_shotlist: Callable[..., ShotList],
) -> None:
    shots = _shots(write_shotlist).shots
    assert run_name("/x/shots.yaml", shots, "cli", WHEN, None) == "shots.yaml 2026-11-27 02:00"
    assert run_name("/x/shots.yaml", shots[:2], "nightly", WHEN, None) == "nightly sq010 2026-11-27"
    assert run_name("/x/shots.yaml", shots[1:2], "keyframe-change", WHEN, ["sh0020"]) == "sh0020 re-render 2026-11-27 02:00"
    assert run_tags(shots, "nightly") == ["show:pilot", "show:Other.Show", "sequence:sq010", "sequence:sq020",
                                          "trigger:nightly"]  # fmt: skip
    assert artifact_key("shots", "Other.Show", "sq_020") == "shots-other-show-sq-020"
    assert artifact_key("progress", "pilot", "sq010", "sq020") == "progress-pilot-sq010-sq020"


def test_the_summary_counts_shots_pairs_and_cost_and_the_message_names_each_failed_shot() -> None:
    ok = ShotOutcome("p/sq/sh0010", "new-version", 1, rendered=3, reused=1, worker_seconds=10.0)
    same = ShotOutcome("p/sq/sh0020", "unchanged", 1, reused=2)
    broken = ShotOutcome("p/sq/sh0030", "failed", rendered=1, failed=1, worker_seconds=2.5,
                         errors=("p/sq/sh0030 pair 0->2: worker died\nmore detail", "p/sq/sh0030 pair 2->4: again"))  # fmt: skip
    batch = BatchReport((ok, same, broken), (("p/sq/sh0040", "shots.yaml: shots[3].source: gone.mp4: not found"),))
    assert batch.summary == "rendered 4 pairs, reused 3, failed 1"
    assert batch.summary_line == "1 shots new, 1 unchanged, 2 failed; rendered 4 pairs, reused 3, failed 1; 12.5 worker-s"
    assert batch.state_message.splitlines() == [
        f"{batch.summary_line}. Failed shots:",
        "- p/sq/sh0040: shots.yaml: shots[3].source: gone.mp4: not found",
        "- p/sq/sh0030: p/sq/sh0030 pair 0->2: worker died",  # names its pair: kept whole
    ]
    assert not batch.ok and BatchReport((ok, same)).ok
    assert cost(12.5, 0) == "12.5 worker-s" and cost(12.5, 0.5) == "6.2 GPU-s"


def test_the_shot_table_links_served_pictures_and_inlines_the_others(
    write_shotlist: Callable[..., ShotList], tmp_path: Path
) -> None:
    shots = _shots(write_shotlist).shots
    settings = Settings(output_root=tmp_path / "out", preview_url="http://farmhead:4201")
    version = tmp_path / "out" / "pilot" / "sq010" / "sh0010" / "v001"
    (version / "preview").mkdir(parents=True)
    for name in ("contact.jpg", THUMB_NAME):
        (version / "preview" / name).write_bytes(b"\xff\xd8\xffjpeg")
    elsewhere = tmp_path / "elsewhere" / THUMB_NAME  # a shot whose own output folder is not served
    elsewhere.parent.mkdir()
    elsewhere.write_bytes(b"\xff\xd8\xffjpeg")
    published = ShotOutcome(shots[0].id, "new-version", 1, mp4=str(version / "sh0010_v001.mp4"), frame_count=12,
                            rendered=5, worker_seconds=4.25, sheet=str(version / "preview" / "contact.jpg"),
                            thumbnail=str(version / "preview" / THUMB_NAME))  # fmt: skip
    other = ShotOutcome(shots[1].id, "unchanged", 2, thumbnail=str(elsewhere))
    rows = [_Row(shots[0], "new-version", published), _Row(shots[1], "unchanged", other),
            _Row(shots[2], "failed", error="shots.yaml: shots[2].source: a|b.mp4: not found")]  # fmt: skip
    markdown = shot_table("pilot / sq010", rows, settings, "run-1")
    base = "http://farmhead:4201/pilot/sq010/sh0010/v001"
    assert f"![pilot/sq010/sh0010]({base}/preview/{THUMB_NAME})" in markdown
    assert f"[▶ mp4]({base}/sh0010_v001.mp4)" in markdown
    assert f"![contact sheet of sh0010 v001]({base}/preview/contact.jpg)" in markdown
    assert "| new-version | v001 | 5 / 0 / 0 | 4.2 worker-s |" in markdown
    assert "![pilot/sq010/sh0020](data:image/jpeg;base64," in markdown  # not under the served root: inline
    assert "| sh0030 | **failed** |" in markdown and "- **sh0030**: shots.yaml: shots[2].source: a\\|b.mp4: not found" in markdown
