"""A batch run: one flow run over a shot list, with its counts."""

from __future__ import annotations

import enum
import uuid
from datetime import datetime

from sqlalchemy import CheckConstraint, ForeignKey, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from shot_db.models._base import OWNER_LEN, PATH_LEN, Base, new_id, status_type, utcnow


class BatchStatus(enum.StrEnum):
    """Where a flow run is."""

    running = "running"
    finished = "finished"
    failed = "failed"


class BatchRun(Base):
    """One row per flow run: what it was given, when it ran, and how many pairs it rendered, reused, lost."""

    __tablename__ = "batch_run"
    __table_args__ = (CheckConstraint("rendered >= 0 AND reused >= 0 AND failed >= 0", name="counts_positive"),)

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    flow_run_id: Mapped[str] = mapped_column(String(64), unique=True)
    flow_name: Mapped[str] = mapped_column(String(128))
    shot_list_path: Mapped[str | None] = mapped_column(String(PATH_LEN))
    started_at: Mapped[datetime] = mapped_column(default=utcnow)
    finished_at: Mapped[datetime | None]
    rendered: Mapped[int] = mapped_column(default=0)
    reused: Mapped[int] = mapped_column(default=0)
    failed: Mapped[int] = mapped_column(default=0)
    status: Mapped[BatchStatus] = mapped_column(status_type(BatchStatus, "batch_status"))
    # The process running it: a running batch whose owner is gone died, and the next run settles its rows.
    owner: Mapped[str | None] = mapped_column(String(OWNER_LEN))
    # Its last heartbeat, by the database's clock (hosts' clocks differ): a batch silent for long died even
    # where no run on its host can prove it (tasks/owner.py). NULL: made before heartbeats, never judged so.
    heartbeat_at: Mapped[datetime | None]
    name: Mapped[str | None] = mapped_column(String(255))  # the flow run's name: "shots.yaml 2026-11-27 02:00"
    trigger: Mapped[str | None] = mapped_column(String(32))  # cli, nightly, keyframe-change
    worker_seconds: Mapped[float] = mapped_column(default=0.0, server_default="0")  # its renders, every attempt
    gpu_seconds: Mapped[float] = mapped_column(default=0.0, server_default="0")  # the same times GPUs held

    shots: Mapped[list[BatchShot]] = relationship(lazy="raise", order_by="BatchShot.position")


class BatchShot(Base):
    """How one shot of a batch ended: published (new or unchanged), or failed and why; its pairs and cost."""

    __tablename__ = "batch_shot"
    __table_args__ = (UniqueConstraint("batch_id", "shot"),)

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    batch_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("batch_run.id"), index=True)
    position: Mapped[int]
    shot: Mapped[str] = mapped_column(String(255))  # show/sequence/code: a shot that failed to plan has no row
    status: Mapped[str] = mapped_column(String(16))  # new-version, unchanged, failed
    version: Mapped[int | None]
    frames: Mapped[int] = mapped_column(default=0)
    rendered: Mapped[int] = mapped_column(default=0)
    reused: Mapped[int] = mapped_column(default=0)
    failed: Mapped[int] = mapped_column(default=0)
    worker_seconds: Mapped[float] = mapped_column(default=0.0)
    gpu_seconds: Mapped[float] = mapped_column(default=0.0)
    video: Mapped[str | None] = mapped_column(String(PATH_LEN))
    error: Mapped[str | None] = mapped_column(Text)
