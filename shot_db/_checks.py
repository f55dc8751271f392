"""Input checks shared by the repository functions: each failure is one line naming the field."""

from __future__ import annotations

import json
import math
import os
import re
from datetime import datetime
from typing import Any, TypeVar

from sqlalchemy import Select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from shot_db._errors import ShotDBError

T = TypeVar("T")
_SHA256 = re.compile(r"[0-9a-f]{64}")


def is_sha256(value: object) -> bool:
    """True for a lowercase sha256 hex digest."""
    return isinstance(value, str) and _SHA256.fullmatch(value) is not None


def sha256(value: object, field: str) -> str:
    """`value` if it is a lowercase sha256 hex digest."""
    if not is_sha256(value):
        raise ShotDBError(f"{field}: {value!r} is not a sha256 hex digest (64 lowercase hex characters)")
    return str(value)


def name(value: object, field: str, *, max_len: int = 128) -> str:
    """A non-empty name without '/', which separates the parts of a shot id."""
    if not isinstance(value, str) or not value.strip() or "/" in value or len(value) > max_len:
        raise ShotDBError(f"{field}: {value!r} must be a non-empty name of at most {max_len} characters without '/'")
    return value


def short_text(value: object, field: str, *, max_len: int) -> str:
    """A non-empty string of at most `max_len` characters."""
    if not isinstance(value, str) or not value or len(value) > max_len:
        raise ShotDBError(f"{field}: {value!r} must be a non-empty string of at most {max_len} characters")
    return value


def positive(value: float, field: str) -> float:
    """A finite number > 0."""
    if not isinstance(value, int | float) or isinstance(value, bool) or not math.isfinite(value) or value <= 0:
        raise ShotDBError(f"{field}: {value!r} must be a finite number > 0")
    return float(value)


def not_negative(value: float, field: str) -> float:
    """A finite number >= 0."""
    if not isinstance(value, int | float) or isinstance(value, bool) or not math.isfinite(value) or value < 0:
        raise ShotDBError(f"{field}: {value!r} must be a finite number >= 0")
    return float(value)


def aware(value: datetime, field: str) -> datetime:
    """A timezone-aware datetime."""
    if not isinstance(value, datetime) or value.tzinfo is None:
        raise ShotDBError(f"{field}: {value!r} must be a timezone-aware datetime")
    return value


def as_json(value: Any, field: str) -> Any:
    """`value` as it reads back from a JSON column (tuples become lists), or an error if it is not JSON."""
    try:
        return json.loads(json.dumps(value, allow_nan=False))
    except (TypeError, ValueError) as exc:
        raise ShotDBError(f"{field}: not JSON-serialisable ({exc})") from None


def path(value: str | os.PathLike[str], field: str) -> str:
    """An absolute, normalised path: the form stored and looked up, so one file has one spelling."""
    raw = os.fspath(value)
    if not raw:
        raise ShotDBError(f"{field}: empty path")
    return os.path.abspath(raw)


def locked(session: Session, stmt: Select[T]) -> T | None:
    """The one row `stmt` selects, locked until the transaction ends (FOR UPDATE on PostgreSQL; on
    SQLite the whole transaction already holds the write lock), with fresh values in the session."""
    return session.scalars(stmt.with_for_update().execution_options(populate_existing=True)).one_or_none()


def insert_or_get(session: Session, row: T, stmt: Select[T]) -> T:
    """Insert `row`; if a concurrent transaction inserted the same key first, the locked existing row."""
    try:
        with session.begin_nested():
            session.add(row)
    except IntegrityError:
        found = locked(session, stmt)
        if found is None:
            raise
        return found
    return row
