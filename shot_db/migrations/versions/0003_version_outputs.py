"""A version's outputs as rows: one per deliverable (kind, path, sha256, frame count, format details).

Until 0002 a version was a PNG sequence and an H.264 MP4, in three columns of `shot_version` (`png_dir`,
`mp4_path`, `mp4_sha256`). Deliverables are chosen per shot now (tasks/deliver/), so each becomes a row
of `shot_version_output`. Versions made before keep reading: their sequence becomes a `png` row (no
sha256: 0002 never hashed a sequence) and their MP4 an `h264` row, both with empty details (0002 recorded
no format). Going back to 0002 needs both rows on every version.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-02
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_versions = sa.table(
    "shot_version",
    sa.column("id", sa.Uuid()),
    sa.column("frame_count", sa.Integer()),
    sa.column("png_dir", sa.String(1024)),
    sa.column("mp4_path", sa.String(1024)),
    sa.column("mp4_sha256", sa.String(64)),
)
_outputs = sa.table(
    "shot_version_output",
    sa.column("version_id", sa.Uuid()),
    sa.column("kind", sa.String(32)),
    sa.column("position", sa.Integer()),
    sa.column("path", sa.String(1024)),
    sa.column("sha256", sa.String(64)),
    sa.column("frame_count", sa.Integer()),
    sa.column("details", sa.JSON()),
)


def _version_table(*, with_files: bool, files_null: bool) -> sa.Table:
    """shot_version as it stands before (or mid-way back to) 0002's file columns, for SQLite batch mode to
    rebuild it from (SQLite does not reflect CHECK constraints, so a reflected copy would lose them)."""
    files = (
        [
            sa.Column("png_dir", sa.String(1024), nullable=files_null),
            sa.Column("mp4_path", sa.String(1024), nullable=files_null),
            sa.Column("mp4_sha256", sa.String(64), nullable=files_null),
        ]
        if with_files
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
        *files,
        sa.CheckConstraint("number >= 1", name="ck_shot_version_number_positive"),
        sa.CheckConstraint("frame_count >= 1", name="ck_shot_version_frame_count_positive"),
        sa.ForeignKeyConstraint(["shot_id"], ["shot.id"], name="fk_shot_version_shot_id_shot"),
        sa.PrimaryKeyConstraint("id", name="pk_shot_version"),
        sa.UniqueConstraint("shot_id", "number", name="uq_shot_version_shot_id_number"),
    )


def upgrade() -> None:
    op.create_table(
        "shot_version_output",
        sa.Column("version_id", sa.Uuid(), nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("path", sa.String(1024), nullable=False),
        sa.Column("sha256", sa.String(64), nullable=True),
        sa.Column("frame_count", sa.Integer(), nullable=False),
        sa.Column("details", sa.JSON(), nullable=False),
        sa.CheckConstraint("position >= 0", name=op.f("ck_shot_version_output_position_not_negative")),
        sa.CheckConstraint("frame_count >= 1", name=op.f("ck_shot_version_output_frame_count_positive")),
        sa.ForeignKeyConstraint(
            ["version_id"], ["shot_version.id"], name=op.f("fk_shot_version_output_version_id_shot_version")
        ),
        sa.PrimaryKeyConstraint("version_id", "kind", name=op.f("pk_shot_version_output")),
        sa.UniqueConstraint("version_id", "position", name=op.f("uq_shot_version_output_version_id_position")),
    )
    op.create_index(op.f("ix_shot_version_output_path"), "shot_version_output", ["path"])
    op.create_index(op.f("ix_shot_version_output_sha256"), "shot_version_output", ["sha256"])

    bind = op.get_bind()
    rows = []
    for version_id, frames, png_dir, mp4_path, mp4_sha256 in bind.execute(
        sa.select(_versions.c.id, _versions.c.frame_count, _versions.c.png_dir, _versions.c.mp4_path, _versions.c.mp4_sha256)
    ).all():
        rows.append({"version_id": version_id, "kind": "png", "position": 0, "path": png_dir, "sha256": None,
                     "frame_count": frames, "details": {}})  # fmt: skip
        rows.append({"version_id": version_id, "kind": "h264", "position": 1, "path": mp4_path, "sha256": mp4_sha256,
                     "frame_count": frames, "details": {}})  # fmt: skip
    if rows:
        bind.execute(_outputs.insert(), rows)

    with op.batch_alter_table("shot_version", copy_from=_version_table(with_files=True, files_null=False)) as batch:
        batch.drop_column("png_dir")
        batch.drop_column("mp4_path")
        batch.drop_column("mp4_sha256")


def downgrade() -> None:
    with op.batch_alter_table("shot_version", copy_from=_version_table(with_files=False, files_null=True)) as batch:
        batch.add_column(sa.Column("png_dir", sa.String(1024), nullable=True))
        batch.add_column(sa.Column("mp4_path", sa.String(1024), nullable=True))
        batch.add_column(sa.Column("mp4_sha256", sa.String(64), nullable=True))
    bind = op.get_bind()
    found: dict[object, dict[str, str | None]] = {}
    for version_id, kind, path, sha256 in bind.execute(
        sa.select(_outputs.c.version_id, _outputs.c.kind, _outputs.c.path, _outputs.c.sha256).where(
            _outputs.c.kind.in_(("png", "h264"))
        )
    ).all():
        values = found.setdefault(version_id, {})
        if kind == "png":
            values["png_dir"] = path
        else:
            values.update(mp4_path=path, mp4_sha256=sha256)
    for (version_id,) in bind.execute(sa.select(_versions.c.id)).all():
        values = found.get(version_id, {})
        if set(values) != {"png_dir", "mp4_path", "mp4_sha256"} or values["mp4_sha256"] is None:
            raise ValueError(
                f"shot_version {version_id}: 0002 keeps a PNG sequence and a hashed H.264 MP4 per version, and this "
                "version delivered other formats; it cannot go back to 0002"
            )
        bind.execute(_versions.update().where(_versions.c.id == version_id).values(**values))
    with op.batch_alter_table("shot_version", copy_from=_version_table(with_files=True, files_null=True)) as batch:
        batch.alter_column("png_dir", existing_type=sa.String(1024), nullable=False)
        batch.alter_column("mp4_path", existing_type=sa.String(1024), nullable=False)
        batch.alter_column("mp4_sha256", existing_type=sa.String(64), nullable=False)
    op.drop_table("shot_version_output")
