"""The quality policy: what a batch does with a pair whose in-betweens the quality scores flag.

Every render is scored on its worker (cluster/qa.py); its scores travel with the result and are kept in
its render row. A shot's `qa` (tasks/shotlist.py) says what a flagged pair gets:

| on_fail    | what is tried after the first render                                         |
|------------|------------------------------------------------------------------------------|
| `flag`     | nothing: the pair is kept, recorded as flagged and shown on the dashboard     |
| `retry`    | up to `retries` renders with other seeds, one at a time                      |
| `fallback` | one render with the `fallback` backend (the shot's seed, none of its params) |

The first clean try is used; when no try is clean, the least flagged (lowest severity, the first of
equals). Every try is a render of its own: its backend and seed are in its render key, so it is
recorded, reused and traced like any render. A retry's seed is derived from the pair's first render key,
so a re-run makes the same choices: `next_step` replays them from the tries' recorded scores
(tasks/render.py asks the shot DB once per round of tries) and renders only a try that is not finished.

A pair whose first try is flagged gets a `Decision`, recorded in the shot DB (`QALog`), in the version's
provenance and in `toonfarm lineage`; the dashboard shows the pairs kept flagged, with a frame strip.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import shot_db
from shot_db import Session, ShotDB
from shot_db.records import QADecisionRecord, QATryRecord
from tasks.contact import SheetFrame, contact_sheet, encode
from tasks.previews import preview_url
from tasks.record import claim_pairs, run
from tasks.settings import Settings
from tooncrafter_model.quality import QAThresholds
from tooncrafter_model.store import atomic_write

if TYPE_CHECKING:
    from tasks.render import PairWork, ShotRenders, ShotWork
    from tasks.shotlist import Shot

STRIP_COLUMNS = 6  # a pair's keyframes and in-betweens, six to a row, as on a version's contact sheet
STRIP_ROWS = 2  # twelve tiles: a pair on 2s to 8s whole; a longer gap shows its start and its end
REASON_FLAGS = 4  # flags a decision's one-line reason names


@dataclass(frozen=True)
class QAPolicy:
    """A shot's `qa`, with its thresholds over the settings' ones."""

    on_fail: str  # flag, retry or fallback
    retries: int
    fallback: str
    thresholds: QAThresholds

    @classmethod
    def of(cls, shot: Shot, settings: Settings) -> QAPolicy:
        qa = shot.qa
        return cls(qa.on_fail, qa.retries, qa.fallback, replace(settings.qa_thresholds, **qa.thresholds))

    def as_json(self) -> dict[str, Any]:
        """What decides this policy's choices (a key its `on_fail` ignores is left out)."""
        doc: dict[str, Any] = {"on_fail": self.on_fail, "thresholds": asdict(self.thresholds)}
        if self.on_fail == "retry":
            doc["retries"] = self.retries
        if self.on_fail == "fallback":
            doc["fallback"] = self.fallback
        return doc

    @property
    def digest(self) -> str:
        """The policy's identity: a pair is decided once per policy."""
        return hashlib.sha256(json.dumps(self.as_json(), sort_keys=True).encode()).hexdigest()


@dataclass(frozen=True)
class Tried:
    """One finished render of a pair, judged: the flags its scores raise under the policy's thresholds."""

    render_key: str
    backend: str
    seed: int
    flags: tuple[str, ...]
    severity: float  # the largest score / threshold ratio: above 1 it is flagged; 0 when unmeasured

    @property
    def flagged(self) -> bool:
        return bool(self.flags)


@dataclass(frozen=True)
class Retake:
    """The next render to try for a flagged pair."""

    backend: str
    seed: int


@dataclass(frozen=True)
class Decision:
    """What the policy did with a pair whose first try was flagged."""

    policy: QAPolicy
    tries: tuple[Tried, ...]
    accepted: int  # index into tries: the one whose frames the shot uses

    @property
    def chosen(self) -> Tried:
        return self.tries[self.accepted]

    @property
    def outcome(self) -> str:
        """flagged (kept although flagged), retried (another seed came out clean) or fell-back."""
        if self.chosen.flagged:
            return "flagged"
        return "retried" if self.chosen.backend == self.tries[0].backend else "fell-back"

    @property
    def reason(self) -> str:
        """The first try's flags, one line (the first few: every try's are kept with it)."""
        flags = self.tries[0].flags
        more = f"; and {len(flags) - REASON_FLAGS} more" if len(flags) > REASON_FLAGS else ""
        return "; ".join(flags[:REASON_FLAGS]) + more

    def summary(self) -> str:
        """One line for people: what was done about the flagged pair, and why."""
        chosen, count = self.chosen, len(self.tries)
        if self.outcome == "retried":
            done = f"try {self.accepted + 1} of {count} (seed {chosen.seed}) came out clean"
        elif self.outcome == "fell-back":
            done = f"{chosen.backend} came out clean"
        elif count == 1:
            done = "kept (qa.on_fail: flag)"
        else:
            kept = f"try {self.accepted + 1} of {count} ({chosen.backend}, seed {chosen.seed})"
            done = f"every try was flagged: kept {kept}"
        return f"{done}; first try flagged: {self.reason}"

    def as_json(self) -> dict[str, Any]:
        """For the version's provenance sidecar."""
        return {
            "outcome": self.outcome,
            "reason": self.reason,
            "policy": self.policy.as_json(),
            "accepted": self.accepted + 1,
            "tries": [asdict(t) for t in self.tries],
        }

    def record(self, shot_id: uuid.UUID) -> QADecisionRecord:
        return QADecisionRecord(
            render_key=self.tries[0].render_key, accepted_key=self.chosen.render_key,
            policy_hash=self.policy.digest, policy=self.policy.as_json(), outcome=self.outcome,
            reason=self.reason, shot_id=shot_id,
            tries=tuple(QATryRecord(t.render_key, t.flags, t.severity) for t in self.tries),
        )


def retry_seed(first_key: str, number: int) -> int:
    """The seed of retry `number` (1, 2, ...) of the pair whose first render key is `first_key`: the same on
    every re-run, different for every pair and retry; 31 bits, which every backend's generator takes."""
    digest = hashlib.sha256(f"{first_key}/retry/{number}".encode()).digest()
    return int.from_bytes(digest[:4], "big") & 0x7FFF_FFFF


def next_step(policy: QAPolicy, backend: str, seed: int, tried: Sequence[Tried]) -> Retake | Decision | None:
    """After the tries so far (the shot's `backend` and `seed` made the first): the next render to try, the
    decision when there is none left to try, or None when the first try is clean (nothing to decide)."""
    last = tried[-1]
    if not last.flagged:
        return Decision(policy, tuple(tried), len(tried) - 1) if len(tried) > 1 else None
    made = len(tried)
    if policy.on_fail == "retry" and made <= policy.retries:
        return Retake(backend, retry_seed(tried[0].render_key, made))
    if policy.on_fail == "fallback" and made == 1:
        return Retake(policy.fallback, seed)
    least = min(range(made), key=lambda i: (tried[i].severity, i))
    return Decision(policy, tuple(tried), least)


# ------------------------------------------------------------------------------------------ recording


class QALog:
    """The shot DB side of the policy: render rows for the tries it adds while the batch runs, and each
    settled shot's decisions (a decision already recorded, as on a re-run, is not added again)."""

    def __init__(self, db: ShotDB, flow_run_id: str | None, on_try: Callable[[], None] | None = None) -> None:
        self.db, self.flow_run_id, self.on_try = db, flow_run_id, on_try

    def claim(self, work: ShotWork, pair: PairWork) -> None:
        """Claim a try the policy adds; `on_try` hears of it (one more pair for the progress to wait for)."""
        claim_pairs(self.db, work, [pair], self.flow_run_id)
        if self.on_try:
            self.on_try()

    def settled(self, done: ShotRenders) -> None:
        decisions = [p.decision for p in done.work.pairs if p.decision is not None]
        if not decisions:
            return
        shot = done.work.plan.shot

        def record(s: Session) -> None:
            row = shot_db.upsert_shot(session=s, show=shot.show, sequence=shot.sequence, code=shot.code, fps=shot.fps)
            shot_db.record_decisions(session=s, decisions=[d.record(row.id) for d in decisions], flow_run_id=self.flow_run_id)

        run(self.db, record)


# ------------------------------------------------------------------------------------------ dashboard


@dataclass(frozen=True)
class PairQA:
    """A decided pair as the dashboard shows it: where it is, what was done, and its frames."""

    a: int  # source frame numbers of its keyframes
    b: int
    outcome: str
    summary: str
    frames: tuple[str, ...]  # the in-betweens the shot uses
    strip: str = ""  # a picture of the pair (keyframes and in-betweens), kept flagged pairs only
    strip_url: str | None = None  # where browsers fetch it (the preview server), when it can serve it


def pair_qa(done: ShotRenders, settings: Settings) -> tuple[PairQA, ...]:
    """The shot's decided pairs in frame order; a pair kept flagged gets a frame strip, written once
    into the store (ARCHITECTURE.md, "Output layout") and linked through the preview server."""
    out = []
    for p in done.work.pairs:
        if p.decision is None:
            continue
        pair = done.work.plan.pairs[p.index]
        strip = _strip(done, p, settings) if p.decision.outcome == "flagged" else None
        url = preview_url(settings.preview_base_url, settings.output_root, strip) if strip else None
        frames = done.frames[p.render_key]
        out.append(PairQA(pair.a, pair.b, p.decision.outcome, p.decision.summary(), frames, str(strip or ""), url))
    return tuple(sorted(out, key=lambda q: q.a))


def _strip(done: ShotRenders, p: PairWork, settings: Settings) -> Path | None:
    """The picture of a flagged pair: its keyframes and in-betweens, titled with what was flagged. None
    when it cannot be written (a full disk): it is a preview, and the pair's frames are listed anyway."""
    plan, pair = done.work.plan, done.work.plan.pairs[p.index]
    path = settings.store.qa_strip(p.render_key, pair.a)
    if path.is_file():
        return path
    image_of = {k.frame: k.path for k in plan.keyframes}
    tiles = [SheetFrame(image_of[pair.a], pair.a, False)]
    tiles += [SheetFrame(Path(f), pair.a + i, True) for i, f in enumerate(done.frames[p.render_key], 1)]
    tiles.append(SheetFrame(image_of[pair.b], pair.b, False))
    decision = p.decision
    scores = sorted({f.split(": ")[1].split()[0] for f in decision.chosen.flags}) if decision else []
    title = f"{plan.shot.code} {pair.a}-{pair.b} flagged: {', '.join(scores)}"
    try:
        picture = contact_sheet(tiles, title=title, columns=STRIP_COLUMNS, max_rows=STRIP_ROWS)
        with atomic_write(path) as f:
            f.write(encode(picture))
    except OSError:
        return None
    return path


def qa_markdown(shot_id: str, pairs: Sequence[PairQA]) -> list[str]:
    """Markdown lines for a shot's decided pairs: the kept flagged ones with their frame strip (or the
    strip's path, when the preview server cannot serve it) and frames, then the replaced ones."""
    if not pairs:
        return []
    flagged = [q for q in pairs if q.outcome == "flagged"]
    lines = [f"#### {shot_id}: {len(flagged)} kept flagged, {len(pairs) - len(flagged)} replaced", ""]
    for q in pairs:
        lines.append(f"- pair {q.a} -> {q.b}, **{q.outcome}**: {q.summary}")
        if q.strip_url:
            lines.append(f"\n  ![pair {q.a} -> {q.b}]({q.strip_url})\n")
        elif q.strip:
            lines.append(f"  strip: `{q.strip}`")
        if q.outcome == "flagged":
            lines.append(f"  frames: {', '.join(f'`{f}`' for f in q.frames)}")
    return lines + [""]
