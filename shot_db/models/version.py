"""A shot version: an assembled, stylized take of a shot, and exactly what it was made from."""

from __future__ import annotations

import enum
import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, CheckConstraint, ForeignKey, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from shot_db.models._base import HASH_LEN, OWNER_LEN, PATH_LEN, Base, new_id, status_type, utcnow
from shot_db.models.keyframe import Keyframe
from shot_db.models.render import Render
from shot_db.models.shot import Shot

KIND_LEN = 32  # a deliverable's registry name


class VersionStatus(enum.StrEnum):
    """Where a version is in publishing (ARCHITECTURE.md, "Publishing"): its row is recorded, with its
    number, before its folder is renamed into place (placing), and marked published once it is there."""

    placing = "placing"
    published = "published"


class ShotVersion(Base):
    """Version N of a shot. A published version is never overwritten or deleted; a placing one whose run
    died is published by the next run if its folder is in place, else removed and its number reused."""

    __tablename__ = "shot_version"
    __table_args__ = (
        # Two batches racing on a shot cannot both take number N: the database refuses the second.
        UniqueConstraint("shot_id", "number"),
        CheckConstraint("number >= 1", name="number_positive"),
        CheckConstraint("frame_count >= 1", name="frame_count_positive"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    shot_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("shot.id"))
    number: Mapped[int]
    assembly_key: Mapped[str] = mapped_column(String(HASH_LEN))
    frame_count: Mapped[int]
    fps: Mapped[float]
    sidecar_path: Mapped[str] = mapped_column(String(PATH_LEN))
    settings: Mapped[dict[str, Any]] = mapped_column(JSON)
    flow_run_id: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    status: Mapped[VersionStatus] = mapped_column(
        status_type(VersionStatus, "version_status"), default=VersionStatus.published, server_default="published"
    )
    owner: Mapped[str | None] = mapped_column(String(OWNER_LEN))  # the process placing it (tasks/owner.py)

    shot: Mapped[Shot] = relationship(lazy="raise")
    renders: Mapped[list[ShotVersionRender]] = relationship(
        lazy="raise", order_by="ShotVersionRender.position", cascade="save-update, merge"
    )
    keyframes: Mapped[list[ShotVersionKeyframe]] = relationship(
        lazy="raise", order_by="ShotVersionKeyframe.frame", cascade="save-update, merge"
    )
    frames: Mapped[list[ShotVersionFrame]] = relationship(
        lazy="raise", order_by="ShotVersionFrame.number", cascade="save-update, merge"
    )
    outputs: Mapped[list[ShotVersionOutput]] = relationship(
        lazy="raise", order_by="ShotVersionOutput.position", cascade="save-update, merge"
    )


class ShotVersionOutput(Base):
    """One deliverable of a version (tasks/deliver/): a movie file or an image sequence's folder.

    `kind` is the format's registry name; `details` what reading the file back found. `sha256` is empty
    only on PNG sequences carried over from revision 0002, which never hashed them (their `details` are
    empty too: 0002 recorded no format).
    """

    __tablename__ = "shot_version_output"
    __table_args__ = (
        UniqueConstraint("version_id", "position"),
        CheckConstraint("position >= 0", name="position_not_negative"),
        CheckConstraint("frame_count >= 1", name="frame_count_positive"),
    )

    version_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("shot_version.id"), primary_key=True)
    kind: Mapped[str] = mapped_column(String(KIND_LEN), primary_key=True)
    position: Mapped[int]  # where the shot list's `deliver` named it
    path: Mapped[str] = mapped_column(String(PATH_LEN), index=True)
    sha256: Mapped[str | None] = mapped_column(String(HASH_LEN), index=True)
    frame_count: Mapped[int]
    details: Mapped[dict[str, Any]] = mapped_column(JSON)


class ShotVersionRender(Base):
    """The renders a version was assembled from, in pair order, with the pair's frames in this shot."""

    __tablename__ = "shot_version_render"
    __table_args__ = (CheckConstraint("frame_b > frame_a", name="pair_order"),)

    # A render may appear twice in one version (a cycle repeats a pair), so position is the key.
    version_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("shot_version.id"), primary_key=True)
    position: Mapped[int] = mapped_column(primary_key=True)
    render_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("render.id"), index=True)
    # The render row keeps the frames of the shot it was first made for; these are this shot's.
    frame_a: Mapped[int]
    frame_b: Mapped[int]

    render: Mapped[Render] = relationship(lazy="raise")


class ShotVersionKeyframe(Base):
    """The keyframes (drawings) a version used, at their frame index in the shot."""

    __tablename__ = "shot_version_keyframe"

    version_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("shot_version.id"), primary_key=True)
    frame: Mapped[int] = mapped_column(primary_key=True)
    keyframe_hash: Mapped[str] = mapped_column(ForeignKey("keyframe.pixel_hash"), index=True)
    # Where the drawing came from ("/shots/a.mp4#frame=12", an image file); the keyframe's own path is
    # its stored copy, shared by every shot that drew the same pixels. None before revision 0005.
    origin: Mapped[str | None] = mapped_column(String(PATH_LEN))

    keyframe: Mapped[Keyframe] = relationship(lazy="raise")


class ShotVersionFrame(Base):
    """One output frame of a version: its pixels, its file, and what produced it.

    The source is a render's in-between (render + 1-based index in the render's frames) or a held
    keyframe; both are empty only on rows carried over from revision 0001, which did not record them.
    """

    __tablename__ = "shot_version_frame"
    __table_args__ = (
        CheckConstraint("number >= 1", name="number_positive"),
        CheckConstraint(
            "(render_id IS NULL AND inbetween IS NULL)"
            " OR (render_id IS NOT NULL AND inbetween >= 1 AND keyframe_hash IS NULL)",
            name="one_source",
        ),
    )

    version_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("shot_version.id"), primary_key=True)
    number: Mapped[int] = mapped_column(primary_key=True)  # 1-based, as in <shot>.0001.png
    pixel_hash: Mapped[str] = mapped_column(String(HASH_LEN), index=True)
    path: Mapped[str | None] = mapped_column(String(PATH_LEN), index=True)
    render_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("render.id"), index=True)
    inbetween: Mapped[int | None]
    keyframe_hash: Mapped[str | None] = mapped_column(ForeignKey("keyframe.pixel_hash"))

    render: Mapped[Render | None] = relationship(lazy="raise")
