"""A shot: the unit a producer tracks, versioned as a whole."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import CheckConstraint, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from shot_db.models._base import Base, new_id, utcnow


class Shot(Base):
    """One shot of a show's sequence; (show, sequence, code) names it."""

    __tablename__ = "shot"
    __table_args__ = (
        UniqueConstraint("show", "sequence", "code"),
        CheckConstraint("fps > 0", name="fps_positive"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    show: Mapped[str] = mapped_column(String(128))
    sequence: Mapped[str] = mapped_column(String(128))
    code: Mapped[str] = mapped_column(String(128))
    fps: Mapped[float]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    @property
    def name(self) -> str:
        """"show/sequence/code", the shot id used across toonfarm."""
        return f"{self.show}/{self.sequence}/{self.code}"
