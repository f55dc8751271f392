"""Quality decisions: what the per-shot QA policy did with a flagged pair, and every try it took.

`qa_decision` holds one row per flagged pair and policy (kept flagged, retried with another seed, fell
back to another backend) with the render the shot uses; `qa_try` lists the renders tried, with the flags
each raised. Nothing before this revision acted on the scores, so there is nothing to carry over.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-02
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_OUTCOMES = ("flagged", "retried", "fell-back")


def upgrade() -> None:
    op.create_table(
        "qa_decision",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("render_id", sa.Uuid(), nullable=False),
        sa.Column("accepted_render_id", sa.Uuid(), nullable=False),
        sa.Column("policy_hash", sa.String(64), nullable=False),
        sa.Column("policy", sa.JSON(), nullable=False),
        sa.Column(
            "outcome",
            sa.Enum(*_OUTCOMES, name="qa_outcome", native_enum=False, create_constraint=True, length=16),
            nullable=False,
        ),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("shot_id", sa.Uuid(), nullable=False),
        sa.Column("flow_run_id", sa.String(64), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["render_id"], ["render.id"], name=op.f("fk_qa_decision_render_id_render")),
        sa.ForeignKeyConstraint(
            ["accepted_render_id"], ["render.id"], name=op.f("fk_qa_decision_accepted_render_id_render")
        ),
        sa.ForeignKeyConstraint(["shot_id"], ["shot.id"], name=op.f("fk_qa_decision_shot_id_shot")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_qa_decision")),
        sa.UniqueConstraint("render_id", "policy_hash", name=op.f("uq_qa_decision_render_id_policy_hash")),
    )
    op.create_index(op.f("ix_qa_decision_accepted_render_id"), "qa_decision", ["accepted_render_id"])
    op.create_index(op.f("ix_qa_decision_shot_id"), "qa_decision", ["shot_id"])
    op.create_table(
        "qa_try",
        sa.Column("decision_id", sa.Uuid(), nullable=False),
        sa.Column("number", sa.Integer(), nullable=False),
        sa.Column("render_id", sa.Uuid(), nullable=False),
        sa.Column("flags", sa.JSON(), nullable=False),
        sa.Column("severity", sa.Double(), nullable=False),
        sa.CheckConstraint("number >= 1", name=op.f("ck_qa_try_number_positive")),
        sa.CheckConstraint("severity >= 0", name=op.f("ck_qa_try_severity_not_negative")),
        sa.ForeignKeyConstraint(["decision_id"], ["qa_decision.id"], name=op.f("fk_qa_try_decision_id_qa_decision")),
        sa.ForeignKeyConstraint(["render_id"], ["render.id"], name=op.f("fk_qa_try_render_id_render")),
        sa.PrimaryKeyConstraint("decision_id", "number", name=op.f("pk_qa_try")),
    )
    op.create_index(op.f("ix_qa_try_render_id"), "qa_try", ["render_id"])


def downgrade() -> None:
    op.drop_table("qa_try")
    op.drop_table("qa_decision")
