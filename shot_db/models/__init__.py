"""The shot DB's tables as typed SQLAlchemy models, one module per aggregate, on one `Base`."""

from shot_db.models._base import Base
from shot_db.models.batch import BatchRun, BatchShot, BatchStatus
from shot_db.models.keyframe import Keyframe
from shot_db.models.quality import QADecision, QAOutcome, QATry
from shot_db.models.render import AttemptStatus, Render, RenderAttempt, RenderStatus
from shot_db.models.shot import Shot
from shot_db.models.version import (
    ShotVersion,
    ShotVersionFrame,
    ShotVersionKeyframe,
    ShotVersionOutput,
    ShotVersionRender,
    VersionStatus,
)

__all__ = [
    "AttemptStatus",
    "Base",
    "BatchRun",
    "BatchShot",
    "BatchStatus",
    "Keyframe",
    "QADecision",
    "QAOutcome",
    "QATry",
    "Render",
    "RenderAttempt",
    "RenderStatus",
    "Shot",
    "ShotVersion",
    "ShotVersionFrame",
    "ShotVersionKeyframe",
    "ShotVersionOutput",
    "ShotVersionRender",
    "VersionStatus",
]
