"""Crash-safe publishing: a version row is recorded as `placing` before its folder is renamed into place,
and `published` once it is there; batches name the process that runs them.

A run killed between the rename and the commit used to leave a vNNN folder without a row, and every later
run took that number again and failed. Now the row comes first (ARCHITECTURE.md, "Publishing"), so the
next run can settle what a dead run left: `shot_version.owner` and `batch_run.owner` name the process
(host, boot, process id, start time). Every version recorded before this revision is in place: published.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-03
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_versions = sa.table("shot_version", sa.column("status", sa.String(16)))


def _version_table(*, placing: bool) -> sa.Table:
    """shot_version as it stands at 0005 (and, with `placing`, at 0006), for SQLite batch mode to rebuild
    it from: SQLite neither adds a CHECK constraint to a table nor reflects one."""
    extra = (
        [
            sa.Column("status", _status(), server_default="published", nullable=False),
            sa.Column("owner", sa.String(128), nullable=True),
        ]
        if placing
        else []
    )
    return sa.Table(
        "shot_version",
        sa.MetaData(),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("shot_id", sa.Uuid(), nullable=False),
        sa.Column("number", sa.Integer(), nullable=False),
        sa.Column("assembly_key", sa.String(64), nullable=False),
        sa.Column("frame_count", sa.Integer(), nullable=False),
        sa.Column("fps", sa.Double(), nullable=False),
        sa.Column("sidecar_path", sa.String(1024), nullable=False),
        sa.Column("settings", sa.JSON(), nullable=False),
        sa.Column("flow_run_id", sa.String(64), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        *extra,
        sa.CheckConstraint("number >= 1", name="ck_shot_version_number_positive"),
        sa.CheckConstraint("frame_count >= 1", name="ck_shot_version_frame_count_positive"),
        sa.ForeignKeyConstraint(["shot_id"], ["shot.id"], name="fk_shot_version_shot_id_shot"),
        sa.PrimaryKeyConstraint("id", name="pk_shot_version"),
        sa.UniqueConstraint("shot_id", "number", name="uq_shot_version_shot_id_number"),
    )


def _status() -> sa.Enum:
    return sa.Enum("placing", "published", name="version_status", native_enum=False, create_constraint=True, length=16)


def upgrade() -> None:
    with op.batch_alter_table("shot_version", copy_from=_version_table(placing=False)) as batch:
        batch.add_column(sa.Column("status", _status(), server_default="published", nullable=False))
        batch.add_column(sa.Column("owner", sa.String(128), nullable=True))
    op.add_column("batch_run", sa.Column("owner", sa.String(128), nullable=True))


def downgrade() -> None:
    bind = op.get_bind()
    if bind.execute(sa.select(sa.func.count()).select_from(_versions).where(_versions.c.status != "published")).scalar():
        raise ValueError("shot_version: versions still being placed; let `toonfarm render` settle them first")
    op.drop_column("batch_run", "owner")
    with op.batch_alter_table("shot_version", copy_from=_version_table(placing=True)) as batch:
        batch.drop_column("owner")
        batch.drop_column("status")
