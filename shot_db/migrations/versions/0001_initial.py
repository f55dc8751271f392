"""Initial schema: shots, keyframes, renders and their attempts, shot versions, batch runs.

Revision ID: 0001
Revises:
Create Date: 2026-11-25
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Migrations keep their own copies of types: later model changes must not rewrite history.
_TS = sa.DateTime(timezone=True)


def _status(name: str, *values: str) -> sa.Enum:
    return sa.Enum(*values, name=name, native_enum=False, create_constraint=True, length=16)


def upgrade() -> None:
    op.create_table(
        "shot",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("show", sa.String(128), nullable=False),
        sa.Column("sequence", sa.String(128), nullable=False),
        sa.Column("code", sa.String(128), nullable=False),
        sa.Column("fps", sa.Double(), nullable=False),
        sa.Column("created_at", _TS, nullable=False),
        sa.Column("updated_at", _TS, nullable=False),
        sa.CheckConstraint("fps > 0", name=op.f("ck_shot_fps_positive")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_shot")),
        sa.UniqueConstraint("show", "sequence", "code", name=op.f("uq_shot_show_sequence_code")),
    )
    op.create_table(
        "keyframe",
        sa.Column("pixel_hash", sa.String(64), nullable=False),
        sa.Column("width", sa.Integer(), nullable=False),
        sa.Column("height", sa.Integer(), nullable=False),
        sa.Column("path", sa.String(1024), nullable=False),
        sa.Column("created_at", _TS, nullable=False),
        sa.CheckConstraint("width > 0 AND height > 0", name=op.f("ck_keyframe_size_positive")),
        sa.PrimaryKeyConstraint("pixel_hash", name=op.f("pk_keyframe")),
    )
    op.create_table(
        "batch_run",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("flow_run_id", sa.String(64), nullable=False),
        sa.Column("flow_name", sa.String(128), nullable=False),
        sa.Column("shot_list_path", sa.String(1024), nullable=True),
        sa.Column("started_at", _TS, nullable=False),
        sa.Column("finished_at", _TS, nullable=True),
        sa.Column("rendered", sa.Integer(), nullable=False),
        sa.Column("reused", sa.Integer(), nullable=False),
        sa.Column("failed", sa.Integer(), nullable=False),
        sa.Column("status", _status("batch_status", "running", "finished", "failed"), nullable=False),
        sa.CheckConstraint("rendered >= 0 AND reused >= 0 AND failed >= 0", name=op.f("ck_batch_run_counts_positive")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_batch_run")),
        sa.UniqueConstraint("flow_run_id", name=op.f("uq_batch_run_flow_run_id")),
    )
    op.create_table(
        "render",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("render_key", sa.String(64), nullable=False),
        sa.Column("shot_id", sa.Uuid(), nullable=False),
        sa.Column("frame_a", sa.Integer(), nullable=False),
        sa.Column("frame_b", sa.Integer(), nullable=False),
        sa.Column("keyframe_a_hash", sa.String(64), nullable=False),
        sa.Column("keyframe_b_hash", sa.String(64), nullable=False),
        sa.Column("inbetweens", sa.Integer(), nullable=False),
        sa.Column("times", sa.JSON(), nullable=False),
        sa.Column("backend", sa.String(64), nullable=False),
        sa.Column("weights_sha256", sa.String(64), nullable=False),
        sa.Column("config_hash", sa.String(64), nullable=False),
        sa.Column("code_version", sa.String(64), nullable=False),
        sa.Column("params", sa.JSON(), nullable=False),
        sa.Column("seed", sa.BigInteger(), nullable=False),
        sa.Column("sketch_hashes", sa.JSON(), nullable=False),
        sa.Column("status", _status("render_status", "running", "finished", "failed"), nullable=False),
        sa.Column("output_dir", sa.String(1024), nullable=True),
        sa.Column("frame_hashes", sa.JSON(), nullable=True),
        sa.Column("worker", sa.String(128), nullable=True),
        sa.Column("node", sa.String(128), nullable=True),
        sa.Column("started_at", _TS, nullable=True),
        sa.Column("finished_at", _TS, nullable=True),
        sa.Column("seconds", sa.Double(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("meta", sa.JSON(), nullable=False),
        sa.Column("flow_run_id", sa.String(64), nullable=True),
        sa.Column("created_at", _TS, nullable=False),
        sa.CheckConstraint("frame_b > frame_a", name=op.f("ck_render_pair_order")),
        sa.CheckConstraint("inbetweens >= 1", name=op.f("ck_render_inbetweens_positive")),
        sa.ForeignKeyConstraint(["shot_id"], ["shot.id"], name=op.f("fk_render_shot_id_shot")),
        sa.ForeignKeyConstraint(
            ["keyframe_a_hash"], ["keyframe.pixel_hash"], name=op.f("fk_render_keyframe_a_hash_keyframe")
        ),
        sa.ForeignKeyConstraint(
            ["keyframe_b_hash"], ["keyframe.pixel_hash"], name=op.f("fk_render_keyframe_b_hash_keyframe")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_render")),
        sa.UniqueConstraint("render_key", name=op.f("uq_render_render_key")),
    )
    op.create_index(op.f("ix_render_shot_id"), "render", ["shot_id"])
    op.create_index(op.f("ix_render_keyframe_a_hash"), "render", ["keyframe_a_hash"])
    op.create_index(op.f("ix_render_keyframe_b_hash"), "render", ["keyframe_b_hash"])
    op.create_table(
        "render_attempt",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("render_id", sa.Uuid(), nullable=False),
        sa.Column("attempt", sa.Integer(), nullable=False),
        sa.Column("worker", sa.String(128), nullable=False),
        sa.Column("node", sa.String(128), nullable=False),
        sa.Column("started_at", _TS, nullable=False),
        sa.Column("finished_at", _TS, nullable=False),
        sa.Column("status", _status("attempt_status", "ok", "failed"), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("model_loads", sa.Integer(), nullable=False),
        sa.Column("flow_run_id", sa.String(64), nullable=True),
        sa.CheckConstraint("attempt >= 1", name=op.f("ck_render_attempt_attempt_positive")),
        sa.ForeignKeyConstraint(["render_id"], ["render.id"], name=op.f("fk_render_attempt_render_id_render")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_render_attempt")),
        sa.UniqueConstraint("render_id", "attempt", name=op.f("uq_render_attempt_render_id_attempt")),
    )
    op.create_index(
        "ix_render_attempt_one_ok",
        "render_attempt",
        ["render_id"],
        unique=True,
        sqlite_where=sa.text("status = 'ok'"),
        postgresql_where=sa.text("status = 'ok'"),
    )
    op.create_table(
        "shot_version",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("shot_id", sa.Uuid(), nullable=False),
        sa.Column("number", sa.Integer(), nullable=False),
        sa.Column("assembly_key", sa.String(64), nullable=False),
        sa.Column("frame_count", sa.Integer(), nullable=False),
        sa.Column("fps", sa.Double(), nullable=False),
        sa.Column("png_dir", sa.String(1024), nullable=False),
        sa.Column("mp4_path", sa.String(1024), nullable=False),
        sa.Column("sidecar_path", sa.String(1024), nullable=False),
        sa.Column("output_hashes", sa.JSON(), nullable=False),
        sa.Column("settings", sa.JSON(), nullable=False),
        sa.Column("flow_run_id", sa.String(64), nullable=True),
        sa.Column("created_at", _TS, nullable=False),
        sa.CheckConstraint("number >= 1", name=op.f("ck_shot_version_number_positive")),
        sa.CheckConstraint("frame_count >= 1", name=op.f("ck_shot_version_frame_count_positive")),
        sa.ForeignKeyConstraint(["shot_id"], ["shot.id"], name=op.f("fk_shot_version_shot_id_shot")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_shot_version")),
        sa.UniqueConstraint("shot_id", "number", name=op.f("uq_shot_version_shot_id_number")),
    )
    op.create_table(
        "shot_version_render",
        sa.Column("version_id", sa.Uuid(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("render_id", sa.Uuid(), nullable=False),
        sa.Column("frame_a", sa.Integer(), nullable=False),
        sa.Column("frame_b", sa.Integer(), nullable=False),
        sa.CheckConstraint("frame_b > frame_a", name=op.f("ck_shot_version_render_pair_order")),
        sa.ForeignKeyConstraint(
            ["version_id"], ["shot_version.id"], name=op.f("fk_shot_version_render_version_id_shot_version")
        ),
        sa.ForeignKeyConstraint(["render_id"], ["render.id"], name=op.f("fk_shot_version_render_render_id_render")),
        sa.PrimaryKeyConstraint("version_id", "position", name=op.f("pk_shot_version_render")),
    )
    op.create_index(op.f("ix_shot_version_render_render_id"), "shot_version_render", ["render_id"])
    op.create_table(
        "shot_version_keyframe",
        sa.Column("version_id", sa.Uuid(), nullable=False),
        sa.Column("frame", sa.Integer(), nullable=False),
        sa.Column("keyframe_hash", sa.String(64), nullable=False),
        sa.ForeignKeyConstraint(
            ["version_id"], ["shot_version.id"], name=op.f("fk_shot_version_keyframe_version_id_shot_version")
        ),
        sa.ForeignKeyConstraint(
            ["keyframe_hash"], ["keyframe.pixel_hash"], name=op.f("fk_shot_version_keyframe_keyframe_hash_keyframe")
        ),
        sa.PrimaryKeyConstraint("version_id", "frame", name=op.f("pk_shot_version_keyframe")),
    )
    op.create_index(op.f("ix_shot_version_keyframe_keyframe_hash"), "shot_version_keyframe", ["keyframe_hash"])


def downgrade() -> None:
    for table in (
        "shot_version_keyframe",
        "shot_version_render",
        "shot_version",
        "render_attempt",
        "render",
        "batch_run",
        "keyframe",
        "shot",
    ):
        op.drop_table(table)
