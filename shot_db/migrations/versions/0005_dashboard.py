"""The producer dashboard: what each batch cost and how each of its shots ended, and who rendered what.

`batch_run` gets its flow run's name, its trigger and its cost (worker-seconds, and GPU-seconds where
the workers held GPUs); `batch_shot` one row per shot of a batch (status, version, pairs, cost, error).
Renders and their attempts get the worker's host name and the GPUs it held; a version's keyframes the
file each drawing came from. Rows from before this revision keep NULL there: nobody recorded them.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-07
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_WORKER_COLUMNS = ("render", "render_attempt")


def upgrade() -> None:
    for table in _WORKER_COLUMNS:
        op.add_column(table, sa.Column("host", sa.String(255), nullable=True))
        op.add_column(table, sa.Column("gpus", sa.Double(), nullable=True))
    op.add_column("shot_version_keyframe", sa.Column("origin", sa.String(1024), nullable=True))
    op.add_column("batch_run", sa.Column("name", sa.String(255), nullable=True))
    op.add_column("batch_run", sa.Column("trigger", sa.String(32), nullable=True))
    op.add_column("batch_run", sa.Column("worker_seconds", sa.Double(), nullable=False, server_default="0"))
    op.add_column("batch_run", sa.Column("gpu_seconds", sa.Double(), nullable=False, server_default="0"))
    op.create_table(
        "batch_shot",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("batch_id", sa.Uuid(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("shot", sa.String(255), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("version", sa.Integer(), nullable=True),
        sa.Column("frames", sa.Integer(), nullable=False),
        sa.Column("rendered", sa.Integer(), nullable=False),
        sa.Column("reused", sa.Integer(), nullable=False),
        sa.Column("failed", sa.Integer(), nullable=False),
        sa.Column("worker_seconds", sa.Double(), nullable=False),
        sa.Column("gpu_seconds", sa.Double(), nullable=False),
        sa.Column("video", sa.String(1024), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(["batch_id"], ["batch_run.id"], name=op.f("fk_batch_shot_batch_id_batch_run")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_batch_shot")),
        sa.UniqueConstraint("batch_id", "shot", name=op.f("uq_batch_shot_batch_id_shot")),
    )
    op.create_index(op.f("ix_batch_shot_batch_id"), "batch_shot", ["batch_id"])


def downgrade() -> None:
    op.drop_index(op.f("ix_batch_shot_batch_id"), table_name="batch_shot")
    op.drop_table("batch_shot")
    with op.batch_alter_table("batch_run") as batch:
        for column in ("gpu_seconds", "worker_seconds", "trigger", "name"):
            batch.drop_column(column)
    with op.batch_alter_table("shot_version_keyframe") as batch:
        batch.drop_column("origin")
    for table in _WORKER_COLUMNS:
        with op.batch_alter_table(table) as batch:
            batch.drop_column("gpus")
            batch.drop_column("host")
