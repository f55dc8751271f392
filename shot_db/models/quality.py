"""What the quality policy decided for a pair whose render was flagged, and every try it took.

A pair whose first render (the one its shot asks for) comes out clean has no row here: its scores are in
its render's `meta["qa"]`. One that is flagged gets a decision: kept and flagged, replaced by a retry with
another seed, or replaced by another backend's render. Every try is a render of its own (its own render
key, attempts and scores); `qa_try` lists them in order with the flags they raised under the policy.
"""

from __future__ import annotations

import enum
import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, CheckConstraint, ForeignKey, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from shot_db.models._base import HASH_LEN, Base, new_id, status_type, utcnow
from shot_db.models.render import Render


class QAOutcome(enum.StrEnum):
    """How a flagged pair ended."""

    flagged = "flagged"  # kept although flagged: the policy says so, or every try was flagged too
    retried = "retried"  # a render with another seed came out clean and replaced it
    fell_back = "fell-back"  # another backend's render came out clean and replaced it


class QADecision(Base):
    """One flagged pair under one policy; the same pair under the same policy is decided once."""

    __tablename__ = "qa_decision"
    __table_args__ = (UniqueConstraint("render_id", "policy_hash"),)

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    # The render the shot asked for (its first try), and the one whose frames the shot uses.
    render_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("render.id"))
    accepted_render_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("render.id"), index=True)
    policy_hash: Mapped[str] = mapped_column(String(HASH_LEN))
    policy: Mapped[dict[str, Any]] = mapped_column(JSON)  # on_fail, retries, fallback, thresholds
    outcome: Mapped[QAOutcome] = mapped_column(status_type(QAOutcome, "qa_outcome"))
    reason: Mapped[str] = mapped_column(Text)  # the first try's flags, one line
    # The shot it was first decided for; the same pair in another shot reuses this row, as renders do.
    shot_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("shot.id"), index=True)
    flow_run_id: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    render: Mapped[Render] = relationship(foreign_keys=[render_id], lazy="raise")
    accepted: Mapped[Render] = relationship(foreign_keys=[accepted_render_id], lazy="raise")
    tries: Mapped[list[QATry]] = relationship(lazy="raise", order_by="QATry.number", cascade="save-update, merge")


class QATry(Base):
    """One try of a decided pair: its render and the flags its scores raised under the decision's policy."""

    __tablename__ = "qa_try"
    __table_args__ = (
        CheckConstraint("number >= 1", name="number_positive"),
        CheckConstraint("severity >= 0", name="severity_not_negative"),
    )

    decision_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("qa_decision.id"), primary_key=True)
    number: Mapped[int] = mapped_column(primary_key=True)  # 1: the render the shot asked for
    render_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("render.id"), index=True)
    flags: Mapped[list[Any]] = mapped_column(JSON)
    # The largest score / threshold ratio over its frames: above 1 it is flagged; the least flagged try
    # is kept when every try is.
    severity: Mapped[float]

    render: Mapped[Render] = relationship(lazy="raise")
