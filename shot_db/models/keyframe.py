"""A keyframe: a decoded drawing, identified by its pixels and stored once, content-addressed."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import CheckConstraint, String
from sqlalchemy.orm import Mapped, mapped_column

from shot_db.models._base import HASH_LEN, PATH_LEN, Base, utcnow


class Keyframe(Base):
    """A drawing's pixels: the pixel hash is the identity, the path where its PNG is stored."""

    __tablename__ = "keyframe"
    __table_args__ = (CheckConstraint("width > 0 AND height > 0", name="size_positive"),)

    # The hash is the row's identity (it never changes), so it is the key other rows refer to.
    pixel_hash: Mapped[str] = mapped_column(String(HASH_LEN), primary_key=True)
    width: Mapped[int]
    height: Mapped[int]
    path: Mapped[str] = mapped_column(String(PATH_LEN))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
