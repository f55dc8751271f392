"""Questions about the past: a shot's versions, and what produced a frame or an output."""

from __future__ import annotations

import os
from pathlib import Path

import shot_db
from shot_db import ShotDB
from shot_db.records import BatchInfo, Lineage, VersionInfo
from tasks.record import transaction
from tooncrafter_model.errors import UserError


def cost(worker_seconds: float, gpus: float) -> str:
    """Render time as producers budget it: GPU-seconds where the workers hold GPUs, else worker-seconds."""
    return f"{worker_seconds * gpus:.1f} GPU-s" if gpus > 0 else f"{worker_seconds:.1f} worker-s"


class UnknownOutput(UserError):
    """A lineage target that is neither a file nor an output the shot DB has recorded."""


def shot_versions(db: ShotDB, ref: str) -> tuple[VersionInfo, ...]:
    """Every version of the shot `ref` ("show/sequence/code" or a unique code), oldest first."""
    with transaction(db) as s:
        shot = shot_db.resolve_shot(session=s, ref=ref)
        return shot_db.shot_history(session=s, show=shot.show, sequence=shot.sequence, code=shot.code)


def lineage_of(db: ShotDB, target: str | os.PathLike[str]) -> tuple[Lineage, ...]:
    """What produced `target`: an assembled frame, an output (a movie file, a sequence's folder), a sidecar,
    or a pixel or output sha256.

    Raises UnknownOutput naming the target when it is neither a file nor a hash the shot DB knows.
    """
    text = str(target)
    is_hash = len(text) == 64 and all(c in "0123456789abcdef" for c in text)
    ref: str | Path = text if is_hash else Path(text).resolve()
    if not is_hash and not Path(ref).exists():
        raise UnknownOutput(f"{target}: no such file")
    with transaction(db) as s:
        found = shot_db.lineage(session=s, target=ref)
    if not found:
        raise UnknownOutput(f"{target}: not an output the shot DB has recorded")
    return found


def latest_batches(db: ShotDB, limit: int = 10) -> tuple[BatchInfo, ...]:
    """The `limit` latest batches, newest first, with how each of their shots ended."""
    with transaction(db) as s:
        return shot_db.latest_batches(session=s, limit=limit)
