"""A render: one keyframe pair interpolated under one render key, and every attempt at it."""

from __future__ import annotations

import enum
import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, CheckConstraint, ForeignKey, Index, String, Text, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from shot_db.models._base import HASH_LEN, PATH_LEN, Base, new_id, status_type, utcnow
from shot_db.models.keyframe import Keyframe
from shot_db.models.shot import Shot


class RenderStatus(enum.StrEnum):
    """Where a render is: claimed and on the farm, done (frames on disk), or given up."""

    running = "running"
    finished = "finished"
    failed = "failed"


class AttemptStatus(enum.StrEnum):
    """How one try of a render ended."""

    ok = "ok"
    failed = "failed"


class Render(Base):
    """One row per render key; a pair re-queued after failing keeps its row and moves on."""

    __tablename__ = "render"
    __table_args__ = (
        CheckConstraint("frame_b > frame_a", name="pair_order"),
        CheckConstraint("inbetweens >= 1", name="inbetweens_positive"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    render_key: Mapped[str] = mapped_column(String(HASH_LEN), unique=True)
    # The shot the pair was first rendered for; the same key in another shot reuses this row.
    shot_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("shot.id"), index=True)
    frame_a: Mapped[int]
    frame_b: Mapped[int]
    keyframe_a_hash: Mapped[str] = mapped_column(ForeignKey("keyframe.pixel_hash"), index=True)
    keyframe_b_hash: Mapped[str] = mapped_column(ForeignKey("keyframe.pixel_hash"), index=True)
    inbetweens: Mapped[int]
    times: Mapped[list[Any]] = mapped_column(JSON)
    backend: Mapped[str] = mapped_column(String(64))
    weights_sha256: Mapped[str] = mapped_column(String(64))
    config_hash: Mapped[str] = mapped_column(String(64))
    code_version: Mapped[str] = mapped_column(String(64))
    params: Mapped[dict[str, Any]] = mapped_column(JSON)
    seed: Mapped[int] = mapped_column(BigInteger)
    sketch_hashes: Mapped[list[Any]] = mapped_column(JSON)
    status: Mapped[RenderStatus] = mapped_column(status_type(RenderStatus, "render_status"))
    output_dir: Mapped[str | None] = mapped_column(String(PATH_LEN))
    frame_hashes: Mapped[list[Any] | None] = mapped_column(JSON(none_as_null=True))
    worker: Mapped[str | None] = mapped_column(String(128))
    node: Mapped[str | None] = mapped_column(String(128))
    host: Mapped[str | None] = mapped_column(String(255))  # the worker machine's host name (node: Ray's id)
    gpus: Mapped[float | None]  # GPUs its worker held: `seconds` are GPU time when above 0 (None: before 0005)
    started_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]
    seconds: Mapped[float | None]
    error: Mapped[str | None] = mapped_column(Text)
    meta: Mapped[dict[str, Any]] = mapped_column(JSON)
    flow_run_id: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    shot: Mapped[Shot] = relationship(lazy="raise")
    keyframe_a: Mapped[Keyframe] = relationship(foreign_keys=[keyframe_a_hash], lazy="raise")
    keyframe_b: Mapped[Keyframe] = relationship(foreign_keys=[keyframe_b_hash], lazy="raise")
    attempts: Mapped[list[RenderAttempt]] = relationship(
        back_populates="render", lazy="raise", order_by="RenderAttempt.attempt"
    )


class RenderAttempt(Base):
    """One try of a render on one worker; failed tries stay, and a render has at most one ok try."""

    __tablename__ = "render_attempt"
    __table_args__ = (
        UniqueConstraint("render_id", "attempt"),
        CheckConstraint("attempt >= 1", name="attempt_positive"),
        # The database, not the code, guarantees "exactly one successful attempt per finished render".
        Index(
            "ix_render_attempt_one_ok",
            "render_id",
            unique=True,
            sqlite_where=text("status = 'ok'"),
            postgresql_where=text("status = 'ok'"),
        ),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    render_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("render.id"))
    attempt: Mapped[int]
    worker: Mapped[str] = mapped_column(String(128))
    node: Mapped[str] = mapped_column(String(128))
    host: Mapped[str | None] = mapped_column(String(255))
    gpus: Mapped[float | None]
    started_at: Mapped[datetime]
    finished_at: Mapped[datetime]
    status: Mapped[AttemptStatus] = mapped_column(status_type(AttemptStatus, "attempt_status"))
    error: Mapped[str | None] = mapped_column(Text)
    model_loads: Mapped[int] = mapped_column(default=0)
    flow_run_id: Mapped[str | None] = mapped_column(String(64))

    render: Mapped[Render] = relationship(back_populates="attempts", lazy="raise")
