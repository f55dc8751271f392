"""The shot DB: what produced every frame. Typed SQLAlchemy 2 models, Alembic migrations, queries.

Engines and schema
    make_engine(url) -> Engine                  SQLite file (WAL, FKs, BEGIN IMMEDIATE) or PostgreSQL (psycopg 3)
    default_url(path) -> str                    URL of a SQLite shot DB file
    make_sessionmaker(engine, *, read_only=False)
    upgrade(engine_or_url, revision="head")     Alembic, migrations shipped in the package
    current_revision(engine) -> str | None

Repository functions: keyword-only, `session` first, never commit. The caller owns the transaction:
    with Session() as session, session.begin():
        shot = upsert_shot(session=session, show="pilot", sequence="sq010", code="sh0010", fps=24)

    upsert_shot, upsert_keyframe                       idempotent
    resolve_shot                                       "show/sequence/code" or a unique bare code
    find_finished_render, claim_render, record_outcome  a render's one state machine
    upsert_keyframes, claim_renders, record_outcomes   the same for a whole batch, in a few statements
    latest_version, create_version                     numbered per shot, safe under concurrency
    shot_history, lineage                              detached snapshots (shot_db.records)
    begin_batch, count_batch, finish_batch

Models live in `shot_db.models`, input and output records in `shot_db.records`; errors are ShotDBError.
"""

from shot_db._batches import begin_batch, count_batch, finish_batch
from shot_db._bulk import claim_renders, record_outcome, record_outcomes, upsert_keyframes
from shot_db._catalog import resolve_shot, upsert_keyframe, upsert_shot
from shot_db._engine import default_url, make_engine, make_sessionmaker
from shot_db._errors import ShotDBError
from shot_db._history import lineage, shot_history
from shot_db._migrate import current_revision, upgrade
from shot_db._renders import claim_render, find_finished_render
from shot_db._versions import create_version, latest_version

__all__ = [
    "ShotDBError",
    "begin_batch",
    "claim_render",
    "claim_renders",
    "count_batch",
    "create_version",
    "current_revision",
    "default_url",
    "find_finished_render",
    "finish_batch",
    "latest_version",
    "lineage",
    "make_engine",
    "make_sessionmaker",
    "record_outcome",
    "record_outcomes",
    "resolve_shot",
    "shot_history",
    "upgrade",
    "upsert_keyframe",
    "upsert_keyframes",
    "upsert_shot",
]
