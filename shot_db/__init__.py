"""The shot DB: what produced every frame. Typed SQLAlchemy 2 models, Alembic migrations, queries.

Opening it
    ShotDB.open(url, migrate=False) -> ShotDB     read only unless `migrate`; db.transaction() -> Session
    default_url(path) -> str                      URL of a SQLite shot DB file
    make_engine(url) -> Engine                    SQLite file (WAL, FKs, BEGIN IMMEDIATE) or PostgreSQL (psycopg 3)
    make_sessionmaker(engine, *, read_only=False)
    upgrade(engine_or_url, revision="head")       Alembic, migrations shipped in the package
    current_revision(engine), head_revision()

Repository functions: keyword-only, `session` first, never commit. The caller owns the transaction:
    with ShotDB.open(url, migrate=True) as db, db.transaction() as session:
        shot = upsert_shot(session=session, show="pilot", sequence="sq010", code="sh0010", fps=24)

    upsert_shot, upsert_keyframe(s)                    idempotent
    resolve_shot                                       "show/sequence/code" or a unique bare code
    find_finished_render, claim_render(s), record_outcome(s)   a render's one state machine
    check_claims                                       what a claim would refuse, checked without the DB
    latest_version, create_version                     numbered per shot, safe under concurrency
    publish_version, drop_version, settle_dead_runs    placing -> published, or taken back (crash safety)
    beat_batch, beat_ages                              a running batch's heartbeat, and each owner's silence
    taken_for_dead                                     whether others settled this live run as dead (it stops)
    finished_quality, record_decisions                 the QA policy's view of renders, and its decisions
    shot_history, newest_version, lineage              detached snapshots (shot_db.records)
    begin_batch, count_batch, finish_batch, latest_batches   a batch's row, its shots and cost

Models live in `shot_db.models`, input and output records in `shot_db.records`. Errors: ShotDBError (a
caller's bug), ShotDBUsageError (what a user asked cannot be answered), ShotDBUnavailable (transient).
"""

from sqlalchemy.orm import Session

from shot_db._batches import beat_batch, begin_batch, count_batch, finish_batch, latest_batches, taken_for_dead
from shot_db._bulk import check_claims, claim_renders, record_outcome, record_outcomes, upsert_keyframes
from shot_db._catalog import resolve_shot, upsert_keyframe, upsert_shot
from shot_db._engine import default_url, make_engine, make_sessionmaker
from shot_db._errors import ShotDBError, ShotDBUnavailable, ShotDBUsageError
from shot_db._history import lineage, newest_version, shot_history
from shot_db._migrate import current_revision, head_revision, upgrade
from shot_db._quality import finished_quality, record_decisions
from shot_db._renders import claim_render, find_finished_render
from shot_db._reconcile import Settled, beat_ages, settle_dead_runs
from shot_db._session import ShotDB
from shot_db._versions import create_version, drop_version, latest_version, publish_version

__all__ = [
    "Session",
    "Settled",
    "ShotDB",
    "ShotDBError",
    "ShotDBUnavailable",
    "ShotDBUsageError",
    "beat_ages",
    "beat_batch",
    "begin_batch",
    "check_claims",
    "claim_render",
    "claim_renders",
    "count_batch",
    "create_version",
    "current_revision",
    "default_url",
    "drop_version",
    "find_finished_render",
    "finished_quality",
    "finish_batch",
    "latest_batches",
    "head_revision",
    "latest_version",
    "lineage",
    "make_engine",
    "make_sessionmaker",
    "newest_version",
    "publish_version",
    "record_outcome",
    "record_decisions",
    "record_outcomes",
    "resolve_shot",
    "settle_dead_runs",
    "shot_history",
    "taken_for_dead",
    "upgrade",
    "upsert_keyframe",
    "upsert_keyframes",
    "upsert_shot",
]
