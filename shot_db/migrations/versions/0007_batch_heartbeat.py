"""Batch heartbeats: a running batch stamps its row with the database's clock every `heartbeat_s`.

A run that died on another host was settled only by the next run on that host, the only one that can
prove a process gone. `batch_run.heartbeat_at` lets any run know it died: its batch stopped beating
(tasks/owner.py). Batches recorded before this revision never beat: NULL, and never judged by it.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-08
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("batch_run", sa.Column("heartbeat_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    op.drop_column("batch_run", "heartbeat_at")
