"""Shot DB fixtures: every test runs on SQLite and on the local PostgreSQL (a throwaway database).

`session` runs inside an outer transaction that is rolled back (nothing a test writes outlives it); tests
that need real commits from several threads take `fresh_url`, a new empty database of their own (a SQLite
file, or a PostgreSQL schema inside the session's throwaway database).
"""

from __future__ import annotations

import hashlib
import itertools
import uuid
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, create_engine, func, select, text, update
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session

import shot_db
from shot_db.models import BatchRun, RenderStatus, Shot
from shot_db.models._base import UTCDateTime
from shot_db.records import (
    AttemptRecord,
    NewVersion,
    OutputFile,
    OutputFrame,
    RenderOutcome,
    RenderSpec,
    VersionOutputs,
    VersionPair,
)

PG_ADMIN_URL = "postgresql+psycopg://root@127.0.0.1:5432/test"
BACKENDS = ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]


@pytest.fixture(scope="session", params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture(scope="session")
def pg_database() -> Iterator[str]:
    """A uniquely named database for this test session, dropped at the end."""
    name = f"toonfarm_test_{uuid.uuid4().hex[:12]}"
    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        yield make_url(PG_ADMIN_URL).set(database=name).render_as_string(hide_password=False)
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    finally:
        admin.dispose()


@contextmanager
def _database(backend: str, folder: Path, request: pytest.FixtureRequest) -> Iterator[str]:
    if backend == "sqlite":
        yield shot_db.default_url(folder / f"shots-{uuid.uuid4().hex[:8]}.sqlite")
        return
    base = request.getfixturevalue("pg_database")
    schema = f"t_{uuid.uuid4().hex[:12]}"
    admin = create_engine(base, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text(f'CREATE SCHEMA "{schema}"'))
        # Every connection of this URL works in its own schema: an empty database for one test.
        yield make_url(base).update_query_dict({"options": f"-csearch_path={schema}"}).render_as_string(
            hide_password=False
        )
        with admin.connect() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
    finally:
        admin.dispose()


@pytest.fixture
def new_database(backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Callable[[], str]]:
    """Call it for the URL of a new, empty (not migrated) database; all are removed after the test."""
    with ExitStack() as stack:
        yield lambda: stack.enter_context(_database(backend, tmp_path, request))


@pytest.fixture
def fresh_url(new_database: Callable[[], str]) -> str:
    """The URL of a new, empty database (not migrated) for this test alone."""
    return new_database()


@pytest.fixture
def fresh_engine(fresh_url: str) -> Iterator[Engine]:
    """An engine on a new database migrated to head, for tests that commit from several threads."""
    engine = shot_db.make_engine(fresh_url)
    shot_db.upgrade(engine)
    yield engine
    engine.dispose()


@pytest.fixture(scope="session")
def engine(backend: str, tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest) -> Iterator[Engine]:
    """One migrated database per backend, shared by the rolled-back tests."""
    with _database(backend, tmp_path_factory.mktemp("shot_db"), request) as url:
        engine = shot_db.make_engine(url)
        shot_db.upgrade(engine)
        yield engine
        engine.dispose()


@pytest.fixture
def session(engine: Engine) -> Iterator[Session]:
    """A session inside an outer transaction that is rolled back: `session.begin()` makes savepoints."""
    with engine.connect() as conn:
        outer = conn.begin()
        with Session(bind=conn, join_transaction_mode="create_savepoint", expire_on_commit=False) as s:
            yield s
        outer.rollback()


def sha(*parts: object) -> str:
    """A sha256 hex digest of `parts`, as stand-in pixel hashes and keys."""
    return hashlib.sha256(repr(parts).encode()).hexdigest()


T0 = datetime(2026, 1, 5, 2, 0, tzinfo=UTC)


def silence(session: Session, flow_run_id: str, seconds: float | None) -> None:
    """Make the batch of `flow_run_id` silent for `seconds` by the database's clock, as if its process had
    stopped beating then; None: it never beat (a row from before heartbeats)."""
    now = session.execute(select(func.now(type_=UTCDateTime()))).scalar_one()
    beat = None if seconds is None else now - timedelta(seconds=seconds)
    session.execute(update(BatchRun).where(BatchRun.flow_run_id == flow_run_id).values(heartbeat_at=beat))


class Farm:
    """Makes shot DB records the way the tasks will: keyframes, renders run to the end, versions."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._ids = itertools.count(1)

    def shot(self, session: Session, code: str | None = None, *, fps: float = 24.0) -> Shot:
        code = code or f"sh{next(self._ids):04d}"
        return shot_db.upsert_shot(session=session, show="pilot", sequence="sq010", code=code, fps=fps)

    def keyframe(self, session: Session, label: object) -> str:
        h = sha("keyframe", label)
        shot_db.upsert_keyframe(
            session=session, pixel_hash=h, width=64, height=48, path=self.root / "store/keyframes" / f"{h}.png"
        )
        return h

    def spec(self, a: str, b: str, *, n: int = 2, seed: int = 7, backend: str = "rife") -> RenderSpec:
        times = tuple((i + 1) / (n + 1) for i in range(n))
        return RenderSpec(
            render_key=sha("render", a, b, n, seed, backend),
            keyframe_a=a,
            keyframe_b=b,
            times=times,
            backend=backend,
            weights_sha256=sha("weights", backend),
            config_hash="cfg-1",
            code_version="toonfarm-model-1",
            seed=seed,
            params={"prompt": "a cat", "steps": 4},
        )

    def render(
        self, session: Session, shot: Shot, spec: RenderSpec, frame_a: int, frame_b: int, *, failures: int = 0
    ) -> str:
        """Claim, try (failing `failures` times first), finish; returns the render key. A finished
        render is reused, as the plan step would."""
        render = shot_db.claim_render(
            session=session, spec=spec, shot=shot, frame_a=frame_a, frame_b=frame_b, flow_run_id="run-1"
        )
        if render.status is RenderStatus.finished:
            return spec.render_key
        attempts = []
        for i in range(failures + 1):
            start = T0 + timedelta(seconds=10 * i)
            attempts.append(AttemptRecord(
                f"actor-{i}", "node-a", start, start + timedelta(seconds=3),
                "CUDA out of memory" if i < failures else None, model_loads=1,
            ))
        shot_db.record_outcome(session=session, flow_run_id="run-1", outcome=RenderOutcome(
            spec.render_key, tuple(attempts), str(self.root / "store/renders" / spec.render_key),
            tuple(sha("frame", spec.render_key, i) for i in range(len(spec.times))), {"padding": [0, 16]},
        ))
        return spec.render_key

    def outputs(self, shot: Shot, layout: list[tuple[str, Any]], tag: object = "") -> Callable[[int], VersionOutputs]:
        """Outputs for a frame layout of ("key", hash) / ("render", (key, i)) entries, named by version."""

        def make(number: int) -> VersionOutputs:
            vdir = self.root / shot.show / shot.sequence / shot.code / f"v{number:03d}"
            frames = []
            for i, (kind, src) in enumerate(layout, 1):
                path = str(vdir / "png" / f"{shot.code}.{i:04d}.png")
                pixels = sha("out", tag, kind, src)
                if kind == "key":
                    frames.append(OutputFrame(path=path, pixel_hash=pixels, keyframe_hash=src))
                else:
                    frames.append(OutputFrame(path=path, pixel_hash=pixels, render_key=src[0], inbetween=src[1]))
            outputs = (
                OutputFile("png", str(vdir / "png"), sha("png", shot.code, number, tag), len(frames), {"first_frame": 1}),
                OutputFile("h264", str(vdir / f"{shot.code}_v{number:03d}.mp4"), sha("mp4", shot.code, number, tag),
                           len(frames), {"pix_fmt": "yuv420p"}),
            )  # fmt: skip
            return VersionOutputs(outputs=outputs, sidecar_path=str(vdir / "provenance.json"), frames=tuple(frames))

        return make

    def simple_version(self, session: Session, shot: Shot, *, tag: object = "", failures: int = 0) -> NewVersion:
        """A version of `shot` from keyframes at 0 and 3 and one render with two in-betweens."""
        a, b = self.keyframe(session, (shot.code, "a")), self.keyframe(session, (shot.code, "b"))
        key = self.render(session, shot, self.spec(a, b), 0, 3, failures=failures)
        layout = [("key", a), ("render", (key, 1)), ("render", (key, 2)), ("key", b)]
        return shot_db.create_version(
            session=session, shot=shot, assembly_key=sha("assembly", shot.code, tag),
            renders=[VersionPair(key, 0, 3)], keyframes={0: a, 3: b},
            outputs=self.outputs(shot, layout, tag), settings={"lut": "show.cube"}, flow_run_id="run-1",
        )


@pytest.fixture
def farm(tmp_path: Path) -> Farm:
    return Farm(tmp_path / "out")
