"""Record: the shot DB side of a batch -- what was planned, every attempt, and each new shot version.

SQL stays in shot_db; this module decides what to record and when. Results are written in small
batches (one transaction per flush, not per pair) to keep the per-pair overhead near a millisecond.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import shot_db
from shot_db import Session, ShotDB
from shot_db.models import BatchStatus
from shot_db.records import AttemptRecord, BatchShotRecord, KeyframeRecord, RenderClaim, RenderOutcome, RenderSpec
from tasks.owner import DeadOwners, this_process
from tasks.testhook import pause_at
from tooncrafter_model.errors import TransientError, UserError, one_line

T = TypeVar("T")

if TYPE_CHECKING:  # the CLI's history commands use this module without starting the farm's imports (Ray)
    from cluster import PairResult
    from tasks.render import PairWork, ShotWork
    from tasks.report import BatchReport


class ShotDBUnreachable(TransientError):
    """The shot DB did not answer (dropped connection, lock timeout); a later try may succeed."""


class BatchTakenForDead(TransientError):
    """Other runs settled this live batch as dead: cut off from the shot DB, it fell silent for longer than
    their `dead_after_s`. It must not write on (its renders were failed, its placing versions settled)."""


class ShotDBRefused(UserError):
    """The shot DB cannot answer what was asked: an unknown shot, a bad URL, a schema to upgrade."""


@contextmanager
def _classified() -> Iterator[None]:
    # The shot DB cannot import toonfarm's error types (ARCHITECTURE.md, "Errors"): its user-caused
    # and transient errors become them here, where tasks open it; its own bugs stay what they are.
    try:
        yield
    except shot_db.ShotDBUnavailable as exc:
        raise ShotDBUnreachable(str(exc)) from exc
    except shot_db.ShotDBUsageError as exc:
        raise ShotDBRefused(str(exc)) from exc


def open_db(url: str, *, migrate: bool, retry_s: float = 0.0) -> ShotDB:
    """The shot DB at `url`: migrated to this code's schema first for a render, read only otherwise; its
    transactions wait up to `retry_s` for a database that is briefly unavailable."""
    with _classified():
        return ShotDB.open(url, migrate=migrate, retry_s=retry_s)


@contextmanager
def transaction(db: ShotDB) -> Iterator[Session]:
    """One shot DB transaction, committed when the block ends; its failures in toonfarm's error types."""
    with _classified(), db.transaction() as session:
        yield session


def run(db: ShotDB, work: Callable[[Session], T]) -> T:
    """`work`, SQL alone, in one transaction, tried whole again while `db_retry_s` lasts when the connection
    drops midway (ShotDB.run); its failures in toonfarm's error types."""
    with _classified():
        return db.run(work)


def batch_id(flow_run_id: str | None) -> str:
    """The key of a batch's row: its flow run's id, or "local" for a batch run without one."""
    return flow_run_id or "local"


def still_ours(s: Session, flow_run_id: str | None) -> None:
    """Raise BatchTakenForDead when other runs settled this process's batch as dead: checked in the same
    transaction as what the batch writes next, so a run taken for dead records nothing more."""
    run_id = batch_id(flow_run_id)
    if shot_db.taken_for_dead(session=s, flow_run_id=run_id, owner=this_process().token):
        raise BatchTakenForDead(
            f"batch {run_id} was settled as dead by another run while it was cut off from the shot DB "
            "(silent past dead_after_s)"
        )


def _utc(ts: float) -> datetime:
    return datetime.fromtimestamp(ts, UTC)


def finished_renders(db: ShotDB, keys: list[str]) -> dict[str, Mapping[str, Any] | None]:
    """The render keys among `keys` that already have finished renders, each with its recorded quality
    scores (None without): what a re-run replays the QA policy's decisions from."""
    return run(db, lambda s: shot_db.finished_quality(session=s, keys=keys))


def record_plans(db: ShotDB, works: list[ShotWork], flow_run_id: str | None) -> list[tuple[str, str]]:
    """Record the shots, their keyframes, and claim a render row for every pair about to be rendered.
    A shot the shot DB refuses (a seed beyond 64 bits, a code too long for its column) is left out and
    returned with its one-line error, (shot id, error); the others are recorded. A connection dropped midway
    runs it all again (`run`): it is SQL alone."""

    def plan(s: Session) -> list[tuple[str, str]]:
        shot_db.upsert_keyframes(session=s, keyframes=[
            KeyframeRecord(k.pixel_hash, w.plan.width, w.plan.height, str(k.path)) for w in works for k in w.plan.keyframes
        ])
        failed, claims = [], []
        for w in works:
            try:
                with db.savepoint(s):
                    mine = _claims(s, w, [p for p in w.pairs if p.job is not None])
                    shot_db.check_claims(mine)
            except shot_db.ShotDBUnavailable:
                raise  # the database, not this shot
            except Exception as exc:  # whatever one shot raises fails that shot only
                failed.append((w.shot_id, f"{w.shot_id}: {one_line(exc)}"))
                continue
            claims += mine
        # One call for every shot: claims lock rows in key order over the whole batch (shot_db/_bulk.py).
        shot_db.claim_renders(session=s, claims=claims, flow_run_id=flow_run_id)
        return failed

    return run(db, plan)


def claim_pairs(db: ShotDB, work: ShotWork, pairs: list[PairWork], flow_run_id: str | None) -> None:
    """Claim render rows for pairs the batch adds while it runs (a retry or a fallback of a flagged pair)."""
    run(db, lambda s: shot_db.claim_renders(session=s, claims=_claims(s, work, pairs), flow_run_id=flow_run_id))


def _claims(s: Session, work: ShotWork, pairs: list[PairWork]) -> list[RenderClaim]:
    plan, shot = work.plan, work.plan.shot
    row = shot_db.upsert_shot(session=s, show=shot.show, sequence=shot.sequence, code=shot.code, fps=shot.fps)
    hashes = {k.frame: k.pixel_hash for k in plan.keyframes}
    claims = []
    for p in pairs:
        pair, ident = plan.pairs[p.index], p.identity
        spec = RenderSpec(
            render_key=p.render_key, keyframe_a=hashes[pair.a], keyframe_b=hashes[pair.b], times=pair.times,
            backend=ident.name, weights_sha256=ident.weights_sha256, config_hash=ident.config_hash,
            code_version=ident.code_version, seed=p.seed, params={"prompt": shot.prompt, **p.params},
            sketch_hashes=p.sketch_hashes,
        )
        claims.append(RenderClaim(spec, row.id, pair.a, pair.b))
    return claims


def _outcome(result: PairResult) -> RenderOutcome:
    # Times come from several machines' wall clocks; a clock stepped back mid-pair must not make the shot
    # DB refuse the whole batch's results, so a finish is never recorded before its start.
    attempts = tuple(
        AttemptRecord(a.worker, a.node, _utc(a.started_at), _utc(max(a.finished_at, a.started_at)), a.error,
                      a.model_loads, a.host or None, a.gpus)  # fmt: skip
        for a in result.attempts
    )
    if result.ok:
        return RenderOutcome(result.job.render_key, attempts, result.job.out_dir, result.frame_hashes, result.meta)
    return RenderOutcome(result.job.render_key, attempts, error=result.error or "failed")


class ResultRecorder:
    """Buffers pair results and records them, attempts first, in one transaction per flush."""

    def __init__(self, db: ShotDB, flow_run_id: str | None, every: int = 32) -> None:
        self.db, self.flow_run_id, self.every = db, flow_run_id, every
        self._buffer: list[PairResult] = []

    def add(self, result: PairResult) -> None:
        self._buffer.append(result)
        if len(self._buffer) >= self.every:
            self.flush()

    def flush(self) -> None:
        """Write what is buffered; a key another batch finished first is left as that batch recorded it."""
        if not self._buffer:
            return
        outcomes = [_outcome(r) for r in self._buffer]

        def record(s: Session) -> None:
            still_ours(s, self.flow_run_id)
            shot_db.record_outcomes(session=s, outcomes=outcomes, flow_run_id=self.flow_run_id)

        run(self.db, record)
        self._buffer.clear()
        pause_at("rendering")


def begin_batch(
    db: ShotDB, flow_run_id: str, flow_name: str, shotlist: str | None, name: str | None = None, trigger: str | None = None
) -> None:
    """Open the batch row of this flow run, owned by this process."""
    run(db, lambda s: shot_db.begin_batch(session=s, flow_run_id=flow_run_id, flow_name=flow_name,
                                          shot_list_path=shotlist, name=name, trigger=trigger,
                                          owner=this_process().token))  # fmt: skip


def settle_dead_runs(db: ShotDB, dead_after_s: float) -> tuple[shot_db.Settled, DeadOwners]:
    """Settle what dead runs left in the shot DB (shot_db/_reconcile.py): a placing version whose folder is
    in place is published, one whose folder is not is taken back; their batches and running renders are
    failed. Who is dead is judged once, in the same transaction (tasks/owner.py: gone from this host, or
    silent for `dead_after_s`), and returned for their staging folders."""

    def settle(s: Session) -> tuple[shot_db.Settled, DeadOwners]:
        dead = DeadOwners.judge(shot_db.beat_ages(session=s), dead_after_s)
        return shot_db.settle_dead_runs(session=s, is_dead=dead, in_place=lambda sidecar: Path(sidecar).is_file()), dead

    return run(db, settle)


def finish_batch(db: ShotDB, flow_run_id: str, batch: BatchReport) -> None:
    """Add the batch's pair counts and cost, record how each shot ended, and close it as finished or failed."""
    gpus = batch.gpus
    failures = dict(batch.failures)
    shots = [
        BatchShotRecord(o.shot_id, o.status, o.version, o.frame_count, o.rendered, o.reused, o.failed,
                        o.worker_seconds, o.worker_seconds * gpus, o.mp4, failures.get(o.shot_id))
        for o in batch.outcomes
    ] + [BatchShotRecord(shot_id, "failed", error=failures[shot_id]) for shot_id, _ in batch.unplanned]  # fmt: skip
    def finish(s: Session) -> None:
        shot_db.count_batch(session=s, flow_run_id=flow_run_id, rendered=batch.rendered, reused=batch.reused,
                            failed=batch.failed)  # fmt: skip
        shot_db.finish_batch(
            session=s, flow_run_id=flow_run_id, status=BatchStatus.finished if batch.ok else BatchStatus.failed,
            shots=shots, worker_seconds=batch.worker_seconds, gpu_seconds=batch.worker_seconds * gpus,
        )

    run(db, finish)
