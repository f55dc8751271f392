"""Frame-level provenance: one row per output frame (pixels, file, source); mp4 hash as a column.

0001 kept a version's output hashes in one JSON document ({"mp4_sha256": ..., "frames": [...]}), so
finding the version behind a frame meant reading every version. This moves the frame hashes into
`shot_version_frame` (indexed by pixel hash and path, with the render in-between or keyframe each frame
came from) and the mp4 hash into `shot_version.mp4_sha256`. Frames carried over from 0001 have no path
and no source: 0001 never recorded them.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-25
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_versions = sa.table(
    "shot_version",
    sa.column("id", sa.Uuid()),
    sa.column("output_hashes", sa.JSON()),
    sa.column("mp4_sha256", sa.String(64)),
)
_frames = sa.table(
    "shot_version_frame",
    sa.column("version_id", sa.Uuid()),
    sa.column("number", sa.Integer()),
    sa.column("pixel_hash", sa.String(64)),
)


def _version_table(*, hashes_json_null: bool, mp4_sha256_null: bool) -> sa.Table:
    """shot_version as it stands mid-migration, for SQLite batch mode to rebuild it from (SQLite does
    not reflect CHECK constraints, so a reflected copy would lose them)."""
    return sa.Table(
        "shot_version",
        sa.MetaData(),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("shot_id", sa.Uuid(), nullable=False),
        sa.Column("number", sa.Integer(), nullable=False),
        sa.Column("assembly_key", sa.String(64), nullable=False),
        sa.Column("frame_count", sa.Integer(), nullable=False),
        sa.Column("fps", sa.Double(), nullable=False),
        sa.Column("png_dir", sa.String(1024), nullable=False),
        sa.Column("mp4_path", sa.String(1024), nullable=False),
        sa.Column("sidecar_path", sa.String(1024), nullable=False),
        sa.Column("settings", sa.JSON(), nullable=False),
        sa.Column("flow_run_id", sa.String(64), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("output_hashes", sa.JSON(), nullable=hashes_json_null),
        sa.Column("mp4_sha256", sa.String(64), nullable=mp4_sha256_null),
        sa.CheckConstraint("number >= 1", name="ck_shot_version_number_positive"),
        sa.CheckConstraint("frame_count >= 1", name="ck_shot_version_frame_count_positive"),
        sa.ForeignKeyConstraint(["shot_id"], ["shot.id"], name="fk_shot_version_shot_id_shot"),
        sa.PrimaryKeyConstraint("id", name="pk_shot_version"),
        sa.UniqueConstraint("shot_id", "number", name="uq_shot_version_shot_id_number"),
    )


def upgrade() -> None:
    op.create_table(
        "shot_version_frame",
        sa.Column("version_id", sa.Uuid(), nullable=False),
        sa.Column("number", sa.Integer(), nullable=False),
        sa.Column("pixel_hash", sa.String(64), nullable=False),
        sa.Column("path", sa.String(1024), nullable=True),
        sa.Column("render_id", sa.Uuid(), nullable=True),
        sa.Column("inbetween", sa.Integer(), nullable=True),
        sa.Column("keyframe_hash", sa.String(64), nullable=True),
        sa.CheckConstraint("number >= 1", name=op.f("ck_shot_version_frame_number_positive")),
        sa.CheckConstraint(
            "(render_id IS NULL AND inbetween IS NULL)"
            " OR (render_id IS NOT NULL AND inbetween >= 1 AND keyframe_hash IS NULL)",
            name=op.f("ck_shot_version_frame_one_source"),
        ),
        sa.ForeignKeyConstraint(
            ["version_id"], ["shot_version.id"], name=op.f("fk_shot_version_frame_version_id_shot_version")
        ),
        sa.ForeignKeyConstraint(["render_id"], ["render.id"], name=op.f("fk_shot_version_frame_render_id_render")),
        sa.ForeignKeyConstraint(
            ["keyframe_hash"], ["keyframe.pixel_hash"], name=op.f("fk_shot_version_frame_keyframe_hash_keyframe")
        ),
        sa.PrimaryKeyConstraint("version_id", "number", name=op.f("pk_shot_version_frame")),
    )
    op.create_index(op.f("ix_shot_version_frame_pixel_hash"), "shot_version_frame", ["pixel_hash"])
    op.create_index(op.f("ix_shot_version_frame_path"), "shot_version_frame", ["path"])
    op.create_index(op.f("ix_shot_version_frame_render_id"), "shot_version_frame", ["render_id"])
    op.add_column("shot_version", sa.Column("mp4_sha256", sa.String(64), nullable=True))

    bind = op.get_bind()
    for version_id, hashes in bind.execute(sa.select(_versions.c.id, _versions.c.output_hashes)).all():
        doc: dict[str, Any] = hashes or {}
        if not isinstance(doc.get("mp4_sha256"), str):
            raise ValueError(f"shot_version {version_id}: output_hashes has no 'mp4_sha256'; cannot migrate it")
        frames = [
            {"version_id": version_id, "number": i, "pixel_hash": h} for i, h in enumerate(doc.get("frames", []), 1)
        ]
        if frames:
            bind.execute(_frames.insert(), frames)
        bind.execute(
            _versions.update().where(_versions.c.id == version_id).values(mp4_sha256=doc["mp4_sha256"])
        )

    with op.batch_alter_table("shot_version", copy_from=_version_table(hashes_json_null=False, mp4_sha256_null=True)) as batch:
        batch.alter_column("mp4_sha256", existing_type=sa.String(64), nullable=False)
        batch.drop_column("output_hashes")


def downgrade() -> None:
    op.add_column("shot_version", sa.Column("output_hashes", sa.JSON(), nullable=True))
    bind = op.get_bind()
    for version_id, mp4_sha256 in bind.execute(sa.select(_versions.c.id, _versions.c.mp4_sha256)).all():
        hashes = bind.scalars(
            sa.select(_frames.c.pixel_hash)
            .where(_frames.c.version_id == version_id)
            .order_by(_frames.c.number)
        ).all()
        doc = {"mp4_sha256": mp4_sha256, "frames": list(hashes)}
        bind.execute(_versions.update().where(_versions.c.id == version_id).values(output_hashes=doc))
    with op.batch_alter_table("shot_version", copy_from=_version_table(hashes_json_null=True, mp4_sha256_null=False)) as batch:
        batch.alter_column("output_hashes", existing_type=sa.JSON(), nullable=False)
        batch.drop_column("mp4_sha256")
    op.drop_table("shot_version_frame")
