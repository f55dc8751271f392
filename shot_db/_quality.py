"""Quality decisions: the recorded scores of finished renders, and what the QA policy did with a flagged pair.

A decision is recorded once per pair (its first try's render) and policy: a re-run that replays the same
decision from the same renders adds nothing. The renders it tried must already be in the shot DB.
"""

from __future__ import annotations

import math
import uuid
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, joinedload, selectinload

from shot_db import _checks as check
from shot_db._bulk import chunks
from shot_db._errors import ShotDBError
from shot_db.models import QADecision, QAOutcome, QATry, Render, RenderStatus, Shot
from shot_db.records import QADecisionInfo, QADecisionRecord, QATryInfo


def finished_quality(*, session: Session, keys: Sequence[str]) -> dict[str, Mapping[str, Any] | None]:
    """The finished renders among `keys`, each with its recorded quality (`meta["qa"]`: scores, flags),
    or None where it has none (rendered without QA, or its scoring failed)."""
    found: dict[str, Mapping[str, Any] | None] = {}
    for part in chunks(list(dict.fromkeys(keys))):
        rows = session.execute(
            select(Render.render_key, Render.meta).where(
                Render.render_key.in_(part), Render.status == RenderStatus.finished
            )
        )
        for key, meta in rows:
            qa = (meta or {}).get("qa")
            found[key] = qa if isinstance(qa, dict) and "frames" in qa else None
    return found


def record_decisions(
    *, session: Session, decisions: Sequence[QADecisionRecord], flow_run_id: str | None = None
) -> int:
    """Record the decisions not recorded yet (same first try, same policy: the same decision); returns
    how many were new. Every try's render must be in the shot DB, the accepted one finished."""
    keys = [t.render_key for d in decisions for t in d.tries]
    renders: dict[str, Render] = {}
    for part in chunks(list(dict.fromkeys(keys))):
        renders.update((r.render_key, r) for r in session.scalars(select(Render).where(Render.render_key.in_(part))))
    added = 0
    for d in decisions:
        row = _decision_row(session, d, renders, flow_run_id)
        exists = select(QADecision.id).where(
            QADecision.render_id == row.render_id, QADecision.policy_hash == row.policy_hash
        )
        if session.scalars(exists).first() is not None:
            continue
        try:
            with session.begin_nested():
                session.add(row)
        except IntegrityError:  # another batch recorded the same decision meanwhile
            continue
        added += 1
    session.flush()
    return added


def _decision_row(
    session: Session, d: QADecisionRecord, renders: Mapping[str, Render], flow_run_id: str | None
) -> QADecision:
    key = check.sha256(d.render_key, "qa decision render_key")
    label = f"qa decision {key[:12]}"
    if d.outcome not in {o.value for o in QAOutcome}:
        raise ShotDBError(f"{label} outcome: {d.outcome!r} is not one of {', '.join(o.value for o in QAOutcome)}")
    if not d.tries or d.tries[0].render_key != key:
        raise ShotDBError(f"{label} tries: the first try must be the render {key[:12]} itself")
    if d.accepted_key not in {t.render_key for t in d.tries}:
        raise ShotDBError(f"{label} accepted_key: {d.accepted_key[:12]} is not one of its tries")
    if session.get(Shot, d.shot_id) is None:
        raise ShotDBError(f"{label} shot_id: no shot {d.shot_id}")
    tries = []
    for number, t in enumerate(d.tries, start=1):
        render = renders.get(t.render_key)
        if render is None:
            raise ShotDBError(f"{label} tries[{number - 1}]: render {t.render_key[:12]} is not in the shot DB")
        if not isinstance(t.severity, int | float) or not math.isfinite(t.severity) or t.severity < 0:
            raise ShotDBError(f"{label} tries[{number - 1}] severity: {t.severity!r} must be a finite number >= 0")
        flags = check.as_json([str(f) for f in t.flags], f"{label} tries[{number - 1}] flags")
        tries.append(QATry(number=number, render_id=render.id, flags=flags, severity=float(t.severity)))
    accepted = renders[d.accepted_key]
    if accepted.status is not RenderStatus.finished:
        status = accepted.status.value
        raise ShotDBError(f"{label} accepted_key: render {d.accepted_key[:12]} is {status}, not finished")
    return QADecision(
        id=uuid.uuid4(), render_id=renders[key].id, accepted_render_id=accepted.id,
        policy_hash=check.sha256(d.policy_hash, f"{label} policy_hash"),
        policy=check.as_json(dict(d.policy), f"{label} policy"), outcome=QAOutcome(d.outcome),
        reason=check.short_text(d.reason, f"{label} reason", max_len=100_000), shot_id=d.shot_id,
        flow_run_id=flow_run_id, tries=tries,
    )


def decisions_choosing(session: Session, render_ids: Iterable[uuid.UUID]) -> dict[uuid.UUID, QADecisionInfo]:
    """For each render among `render_ids` that a quality decision chose, the latest such decision."""
    ids = list(dict.fromkeys(render_ids))
    found: dict[uuid.UUID, QADecisionInfo] = {}
    for part in chunks(ids):
        rows = session.scalars(
            select(QADecision)
            .where(QADecision.accepted_render_id.in_(part))
            .order_by(QADecision.created_at)
            .options(
                joinedload(QADecision.render), joinedload(QADecision.accepted),
                selectinload(QADecision.tries).joinedload(QATry.render),
            )
        ).unique()
        for d in rows:  # oldest first: the latest decision wins
            found[d.accepted_render_id] = _info(d)
    return found


def _info(d: QADecision) -> QADecisionInfo:
    tries = tuple(
        QATryInfo(t.number, t.render.render_key, t.render.backend, t.render.seed, tuple(t.flags), t.severity)
        for t in d.tries
    )
    return QADecisionInfo(
        outcome=d.outcome.value, reason=d.reason, policy=d.policy, render_key=d.render.render_key,
        accepted_key=d.accepted.render_key, tries=tries, flow_run_id=d.flow_run_id, created_at=d.created_at,
    )
