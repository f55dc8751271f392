"""The actor pool: one priority queue of pairs over all shots, fed to N render workers.

Scheduling is done here, on the driver, rather than by Ray's task retries, because every attempt must
be recorded, a retry should go to a *different* worker, a hung pair must be bounded, and a worker may
only hold `max_in_flight_per_actor` pairs at a time (one running, the next already queued on it, so
it never idles between pairs while the driver still sees the whole queue for priorities and retries).

Actors are restartable (`max_restarts`) and their calls are not retried by Ray (`max_task_retries=0`):
when an actor dies mid-pair (SIGKILL, OOM, `os._exit`) or is killed by the pool for a timeout, the
pair that was running gets a failed attempt, the pairs queued behind it go back to the queue untouched,
and the actor is probed with `info()` until Ray has restarted it (its constructor reloads the model).

A failed pair is retried on another worker unless its error's type says the job itself is bad (a
UserError, e.g. keyframes of two sizes): a worker, a GPU or a node fails in ways no type announces, and
a death, a timeout or unpublishable output (QAError, transient) may not repeat elsewhere.
"""

from __future__ import annotations

import heapq
import re
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import ray
from ray.actor import ActorHandle
from ray.exceptions import GetTimeoutError, RayActorError, RayError

from cluster.config import PoolConfig, WorkerConfig
from cluster.jobs import Attempt, PairJob, PairResult
from cluster.staging import sweep_temp
from cluster.worker import RenderWorker, WorkerInfo
from tooncrafter_model.errors import UserError

# ===================================================================================== records


class PoolStartError(UserError):
    """The pool's actors could not start: a bad backend or settings, or resources the cluster lacks."""


@dataclass(frozen=True)
class WorkerStats:
    """One actor's share of the work, over the pool's lifetime."""

    worker: str
    node: str
    pid: int
    accelerator_ids: tuple[str, ...]
    alive: bool
    model_loads: int  # over all of the actor's processes: a restart reloads
    restarts: int  # restarts the pool saw (crashes and timeout kills)
    pairs_ok: int
    attempts_failed: int
    busy_s: float  # time spent inside render calls, failed ones included


@dataclass(frozen=True)
class PoolStats:
    """Figures for benchmarks and provenance."""

    workers: tuple[WorkerStats, ...]
    pairs_ok: int
    pairs_failed: int
    max_in_flight: int  # most render calls outstanding at once, over all actors
    in_flight_limit: int  # actors * max_in_flight_per_actor
    run_s: float  # wall time spent inside run()

    def model_loads(self) -> dict[str, int]:
        return {w.worker: w.model_loads for w in self.workers}

    def pairs_per_worker(self) -> dict[str, int]:
        return {w.worker: w.pairs_ok for w in self.workers}

    def pairs_per_node(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for w in self.workers:
            out[w.node] = out.get(w.node, 0) + w.pairs_ok
        return out

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


STEP_EVERY_S = 1.0  # how often the pool reads the workers' sampling steps


class StepBoard:
    """Where workers leave the latest sampling step of the pairs they render (a Ray actor: a worker's
    `render` call holds its actor until the pair is done, so steps travel beside it), and the pool reads
    them off: the farm's progress channel for long pairs (ToonCrafter's DDIM steps)."""

    def __init__(self) -> None:
        self._latest: dict[str, tuple[int, int]] = {}

    def report(self, render_key: str, step: int, steps: int) -> None:
        self._latest[render_key] = (step, steps)

    def drain(self) -> dict[str, tuple[int, int]]:
        latest, self._latest = self._latest, {}
        return latest


# ===================================================================================== internal state


@dataclass
class _Item:
    seq: int
    job: PairJob
    attempts: list[Attempt] = field(default_factory=list)
    failed_on: set[str] = field(default_factory=set)
    crashed: bool = False  # an attempt died with its worker: staging folders may be left behind

    @property
    def key(self) -> tuple[int, int]:
        return (-self.job.priority, self.seq)  # higher priority first, then submission order


@dataclass
class _Flight:
    ref: ray.ObjectRef
    item: _Item
    submitted: float
    head_since: float | None  # when it became the oldest call on its actor, i.e. started running


@dataclass
class _Slot:
    index: int
    handle: ActorHandle
    # starting -> ready -> (starting after a loss ...) -> dead; `stale` after an abandoned run: its actor
    # still renders pairs nobody collects, and is restarted before the next run uses it
    state: str = "starting"
    info: WorkerInfo | None = None
    probe: ray.ObjectRef | None = None
    probe_deadline: float = 0.0
    inflight: deque[_Flight] = field(default_factory=deque)
    loads: dict[str, int] = field(default_factory=dict)  # process id -> model loads in that process
    restarts: int = 0
    pairs_ok: int = 0
    attempts_failed: int = 0
    busy_s: float = 0.0
    last_error: str = ""

    @property
    def worker(self) -> str:
        return self.info.worker if self.info else f"slot-{self.index}"

    def note_loads(self, process: str, loads: int) -> int:
        if process:
            self.loads[process] = max(loads, self.loads.get(process, 0))
        return sum(self.loads.values())


_ANSI = re.compile(r"\x1b\[[0-9;]*m")


@dataclass
class _Batch:
    """One run's state: the waiting pairs (a heap by priority), the calls in flight, busy folders."""

    queue: list[tuple[tuple[int, int], _Item]]
    flights: dict[ray.ObjectRef, tuple[_Slot, _Flight]] = field(default_factory=dict)
    busy_dirs: set[str] = field(default_factory=set)

    def push(self, item: _Item) -> None:
        heapq.heappush(self.queue, (item.key, item))


def _first_line(exc: BaseException) -> str:
    """One line for an attempt's error: Ray's own first line, or the root cause for a failed constructor."""
    lines = [line for line in _ANSI.sub("", str(exc)).splitlines() if line.strip()]
    if isinstance(exc, RayActorError) and exc.actor_init_failed and lines:
        return f"the worker's constructor failed: {lines[-1].strip()}"  # the model load's own error
    return f"{type(exc).__name__}: {lines[0] if lines else ''}"


# ===================================================================================== the pool


class ActorPool:
    """N render actors with booked resources, retries and backpressure; use as a context manager."""

    def __init__(
        self, pool_cfg: PoolConfig, worker_cfg: WorkerConfig, *, on_step: Callable[[str, int, int], None] | None = None
    ) -> None:
        self.pool_cfg = pool_cfg
        self.worker_cfg = worker_cfg
        self.on_step = on_step  # (render key, step, steps) of pairs in flight, from the board, throttled
        self._board: ActorHandle | None = None
        self._board_read = 0.0
        self._slots: list[_Slot] = []
        self._running = False
        self._max_in_flight = 0
        self._pairs_ok = 0
        self._pairs_failed = 0
        self._run_s = 0.0
        self._batch: _Batch | None = None
        self._submitted = 0

    # ------------------------------------------------------------------ lifecycle

    def __enter__(self) -> ActorPool:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def start(self) -> None:
        """Create the actors and wait until each has loaded its model (or fail with the reason)."""
        if not ray.is_initialized():
            raise RuntimeError("ActorPool needs a Ray connection: wrap it in `with cluster.connect(): ...`")
        if self._slots:
            return
        self._check_capacity()
        actor_cls = ray.remote(RenderWorker).options(
            max_restarts=self.pool_cfg.max_restarts, max_task_retries=0, **self.worker_cfg.ray_options()
        )
        self._slots = [_Slot(i, actor_cls.remote(self.worker_cfg)) for i in range(self.pool_cfg.actors)]
        if self.on_step is not None:  # no resources: it only holds numbers
            self._board = ray.remote(StepBoard).options(num_cpus=0).remote()
        for slot in self._slots:
            self._probe(slot)
        try:
            self._await_start()
        except BaseException:
            self.close()
            raise

    def close(self) -> None:
        """Kill the actors; their resources go back to Ray."""
        for slot in self._slots:
            ray.kill(slot.handle, no_restart=True)
        self._slots = []
        if self._board is not None:
            ray.kill(self._board)
            self._board = None

    def _check_capacity(self) -> None:
        total = ray.cluster_resources()
        need = {"CPU": self.worker_cfg.num_cpus, "GPU": self.worker_cfg.num_gpus}
        need.update(dict(self.worker_cfg.resource_pairs()))
        for name, each in need.items():
            want = each * self.pool_cfg.actors
            if want > total.get(name, 0.0) + 1e-9:
                raise PoolStartError(
                    f"PoolConfig.actors={self.pool_cfg.actors} x WorkerConfig {name}={each:g} needs {name}={want:g}, "
                    f"the Ray cluster has {name}={total.get(name, 0.0):g}: the extra actors would wait forever"
                )

    def wait_workers(self) -> int:
        """Block until no actor is (re)starting, each bounded by `start_timeout_s`; returns how many live."""
        while any(s.state == "starting" for s in self._slots):
            self._poll_probes(block=True)
        return sum(s.state == "ready" for s in self._slots)

    def _await_start(self) -> None:
        self.wait_workers()
        dead = [s for s in self._slots if s.state == "dead"]
        if dead:
            raise PoolStartError(
                f"{len(dead)} of {len(self._slots)} render workers failed to start: {dead[0].last_error}"
            )

    def _probe(self, slot: _Slot) -> None:
        # Retried by Ray while the actor restarts; a permanently dead actor raises ActorDiedError.
        slot.state = "starting"
        slot.probe = slot.handle.info.options(max_task_retries=-1).remote()
        slot.probe_deadline = time.monotonic() + self.pool_cfg.start_timeout_s

    def _poll_probes(self, block: bool) -> None:
        starting = {s.probe: s for s in self._slots if s.state == "starting" and s.probe is not None}
        if not starting:
            return
        deadline = min(s.probe_deadline for s in starting.values())
        timeout = max(0.0, deadline - time.monotonic()) if block else 0.0
        done, _ = ray.wait(list(starting), num_returns=len(starting) if not block else 1, timeout=timeout)
        for ref in done:
            self._on_probe(starting[ref], ref)
        now = time.monotonic()
        for slot in starting.values():
            if slot.state == "starting" and now >= slot.probe_deadline:
                slot.last_error = (
                    f"not ready after {self.pool_cfg.start_timeout_s:g} s "
                    f"(booking {self.worker_cfg.ray_options()})"
                )
                self._bury(slot)

    def _on_probe(self, slot: _Slot, ref: ray.ObjectRef) -> None:
        try:
            info: WorkerInfo = ray.get(ref)
        except RayError as exc:
            slot.last_error = _first_line(exc)
            self._bury(slot)
            return
        slot.info, slot.state, slot.probe = info, "ready", None
        slot.note_loads(info.process, info.model_loads)

    def _bury(self, slot: _Slot) -> None:
        slot.state, slot.probe = "dead", None
        ray.kill(slot.handle, no_restart=True)

    # ------------------------------------------------------------------ running pairs

    def run(self, jobs: Iterable[PairJob]) -> Iterator[PairResult]:
        """Render `jobs`, yielding each pair's result as soon as it is settled (done or out of attempts).

        The job records (no pixels) are read up front so that priorities order the whole queue.
        """
        if self._running:
            raise RuntimeError("ActorPool.run is already running: one run at a time per pool")
        if not self._slots:
            raise RuntimeError("ActorPool is not started: use it as a context manager")
        self._running = True
        for slot in self._slots:
            if slot.state == "stale":  # still busy with an abandoned run's pairs: cleared before this run
                self._restart(slot)
        batch = self._batch = _Batch([(item.key, item) for item in map(self._item, jobs)])
        heapq.heapify(batch.queue)
        t0 = time.monotonic()
        try:
            while batch.queue or batch.flights:
                self._fill(batch)
                if not batch.flights and not any(s.state == "starting" for s in self._slots):
                    yield from self._fail_all(batch)
                    break
                yield from self._step(batch)
        finally:
            if batch.flights:  # the caller stopped early: its actors hold work nobody will collect (`_lose`)
                for slot in {id(s): s for s, _ in batch.flights.values()}.values():
                    self._lose(slot, None, batch)
            self._run_s += time.monotonic() - t0
            self._running = False
            self._batch = None

    def submit(self, job: PairJob) -> None:
        """Queue one more pair on the running `run`, whose results it joins; call it while handling a
        result (a pair to render again once its result is seen)."""
        if self._batch is None:
            raise RuntimeError("ActorPool.submit needs a running run(): submit while iterating its results")
        self._batch.push(self._item(job))

    def _item(self, job: PairJob) -> _Item:
        self._submitted += 1
        return _Item(self._submitted, job)

    def _fill(self, batch: _Batch) -> None:
        limit = self.pool_cfg.max_in_flight_per_actor
        live = {s.worker for s in self._slots if s.state != "dead"}
        progress = True
        while batch.queue and progress:  # one pair per actor per round spreads a short queue evenly
            progress = False
            for slot in self._slots:
                if slot.state != "ready" or len(slot.inflight) >= limit or not batch.queue:
                    continue
                item = self._pop_for(slot, batch, live)
                if item is None:
                    continue
                now = time.monotonic()
                ref = slot.handle.render.remote(item.job, self.pool_cfg.qa_checks, self._board)
                flight = _Flight(ref, item, now, now if not slot.inflight else None)
                slot.inflight.append(flight)
                batch.flights[ref] = (slot, flight)
                batch.busy_dirs.add(item.job.out_dir)
                progress = True
        self._max_in_flight = max(self._max_in_flight, len(batch.flights))

    @staticmethod
    def _pop_for(slot: _Slot, batch: _Batch, live: set[str]) -> _Item | None:
        skipped: list[_Item] = []
        chosen: _Item | None = None
        while batch.queue and chosen is None and len(skipped) < 64:
            _, item = heapq.heappop(batch.queue)
            # One render per output folder at a time; a retry prefers a worker it has not failed on.
            elsewhere = slot.worker in item.failed_on and not live <= item.failed_on
            if item.job.out_dir in batch.busy_dirs or elsewhere:
                skipped.append(item)
            else:
                chosen = item
        for held in skipped:
            batch.push(held)
        return chosen

    def _step(self, batch: _Batch) -> Iterator[PairResult]:
        timeout_s = self.pool_cfg.pair_timeout_s
        deadlines = [s.probe_deadline for s in self._slots if s.state == "starting"]
        for slot in self._slots:
            head = slot.inflight[0] if slot.state == "ready" and slot.inflight else None
            if head is not None and head.head_since is not None:
                deadlines.append(head.head_since + timeout_s)
        probes = [s.probe for s in self._slots if s.state == "starting" and s.probe is not None]
        wait_s = max(0.0, min(deadlines) - time.monotonic()) if deadlines else None
        if self._board is not None:  # wake up to pass the workers' sampling steps on
            wait_s = min(wait_s, STEP_EVERY_S) if wait_s is not None else STEP_EVERY_S
        done, _ = ray.wait(list(batch.flights) + probes, num_returns=1, timeout=wait_s)
        self._read_board()
        out: list[PairResult] = []
        for ref in done:
            if ref in batch.flights:
                slot, flight = batch.flights[ref]
                out += self._settle(slot, flight, batch)
        self._poll_probes(block=False)
        now = time.monotonic()
        for slot in self._slots:
            head = slot.inflight[0] if slot.state == "ready" and slot.inflight else None
            if head is not None and head.head_since is not None and now - head.head_since >= timeout_s:
                ray.kill(slot.handle, no_restart=False)  # actor tasks cannot be interrupted; the actor can
                out += self._lose(slot, f"timed out after {timeout_s:g} s", batch)
        yield from out

    def _read_board(self) -> None:
        """Hand the steps workers reported since the last read to `on_step`, at most every STEP_EVERY_S."""
        if self._board is None or self.on_step is None or time.monotonic() - self._board_read < STEP_EVERY_S:
            return
        self._board_read = time.monotonic()
        try:
            latest: dict[str, tuple[int, int]] = ray.get(self._board.drain.remote(), timeout=STEP_EVERY_S)
        except (GetTimeoutError, RayError):  # progress is a courtesy: a slow board never holds the farm up
            return
        for key, (step, steps) in latest.items():
            self.on_step(key, step, steps)

    def _settle(self, slot: _Slot, flight: _Flight, batch: _Batch) -> list[PairResult]:
        try:
            result: PairResult = ray.get(flight.ref)
        except RayActorError as exc:
            return self._lose(slot, f"worker died: {_first_line(exc)}", batch)
        except RayError as exc:  # an error outside render's own handling: the actor itself is fine
            result = self._untracked_failure(slot, flight, _first_line(exc))
        self._retire(slot, flight, batch)
        return self._record(slot, flight.item, result, batch)

    def _retire(self, slot: _Slot, flight: _Flight, batch: _Batch) -> None:
        slot.inflight.remove(flight)
        batch.flights.pop(flight.ref, None)
        batch.busy_dirs.discard(flight.item.job.out_dir)
        if slot.inflight and slot.inflight[0].head_since is None:
            slot.inflight[0].head_since = time.monotonic()

    def _untracked_failure(self, slot: _Slot, flight: _Flight, error: str) -> PairResult:
        started = time.time() - (time.monotonic() - (flight.head_since or flight.submitted))
        attempt = self._driver_attempt(slot, started, error)
        return PairResult(job=flight.item.job, ok=False, attempts=(attempt,), error=error)

    def _driver_attempt(self, slot: _Slot, started: float, error: str) -> Attempt:
        info = slot.info
        return Attempt(
            worker=slot.worker,
            node=info.node if info else "",
            started_at=started,
            finished_at=time.time(),
            error=error,
            model_loads=sum(slot.loads.values()),
            process=info.process if info else "",
            host=info.host if info else "",
            gpus=self.worker_cfg.num_gpus,
        )

    def _record(self, slot: _Slot, item: _Item, result: PairResult, batch: _Batch) -> list[PairResult]:
        attempt = result.attempts[-1]
        attempt = replace(attempt, model_loads=slot.note_loads(attempt.process, attempt.model_loads))
        slot.busy_s += attempt.finished_at - attempt.started_at
        item.attempts.append(attempt)
        if result.ok:
            slot.pairs_ok += 1
            return [self._finish(item, replace(result, attempts=tuple(item.attempts)))]
        slot.attempts_failed += 1
        item.failed_on.add(slot.worker)
        return self._retry_or_fail(item, result.error or "failed", batch, retry=attempt.retry)

    def _retry_or_fail(self, item: _Item, error: str, batch: _Batch, *, retry: bool = True) -> list[PairResult]:
        if retry and len(item.attempts) < self.pool_cfg.max_attempts:
            batch.push(item)
            return []
        failed = PairResult(job=item.job, ok=False, attempts=tuple(item.attempts), error=error)
        return [self._finish(item, failed)]

    def _finish(self, item: _Item, result: PairResult) -> PairResult:
        if item.crashed:
            sweep_temp(Path(item.job.out_dir))
        if result.ok:
            self._pairs_ok += 1
        else:
            self._pairs_failed += 1
        return result

    def _lose(self, slot: _Slot, error: str | None, batch: _Batch) -> list[PairResult]:
        """The actor lost its work (death, timeout kill, or an abandoned run): settle what finished,
        charge the running pair with `error`, requeue the rest, and wait for the restarted actor. An
        abandoned run's actor (no `error`) is left stale: restarted only if the pool runs again, since a
        pool closed next (a batch that stopped) would reload a model for nothing."""
        out: list[PairResult] = []
        charged = error is None
        for flight in list(slot.inflight):
            self._retire(slot, flight, batch)
            finished = None
            if ray.wait([flight.ref], timeout=0)[0]:
                try:
                    finished = ray.get(flight.ref, timeout=0)
                except (RayError, GetTimeoutError):
                    finished = None
            if finished is not None:
                out += self._record(slot, flight.item, finished, batch)
            elif not charged:
                charged = True
                flight.item.crashed = True
                started = time.time() - (time.monotonic() - (flight.head_since or flight.submitted))
                flight.item.attempts.append(self._driver_attempt(slot, started, str(error)))
                slot.attempts_failed += 1
                slot.busy_s += time.monotonic() - (flight.head_since or flight.submitted)
                flight.item.failed_on.add(slot.worker)
                out += self._retry_or_fail(flight.item, str(error), batch)
            else:
                flight.item.crashed = True
                batch.push(flight.item)
        if error is None:  # abandoned: restarted when a run needs it, so a pool closed next reloads nothing
            slot.state = "stale"
            return out
        slot.last_error = str(error)
        self._restart(slot)
        return out

    def _restart(self, slot: _Slot) -> None:
        """Restart the actor (Ray reruns its constructor) and wait for it; a dead actor is only waited for."""
        if slot.state == "stale":
            ray.kill(slot.handle, no_restart=False)
        slot.restarts += 1
        self._probe(slot)

    def _fail_all(self, batch: _Batch) -> Iterator[PairResult]:
        reasons = "; ".join(sorted({s.last_error for s in self._slots if s.last_error})) or "no worker is alive"
        while batch.queue:
            _, item = heapq.heappop(batch.queue)
            error = f"no live render workers left ({reasons})"
            yield self._finish(item, PairResult(job=item.job, ok=False, attempts=tuple(item.attempts), error=error))

    # ------------------------------------------------------------------ reporting

    def stats(self) -> PoolStats:
        """Model loads, pairs and busy time per actor; in-flight high-water mark; time in run()."""
        workers = tuple(
            WorkerStats(
                worker=s.worker,
                node=s.info.node if s.info else "",
                pid=s.info.pid if s.info else 0,
                accelerator_ids=s.info.accelerator_ids if s.info else (),
                alive=s.state != "dead",
                model_loads=sum(s.loads.values()),
                restarts=s.restarts,
                pairs_ok=s.pairs_ok,
                attempts_failed=s.attempts_failed,
                busy_s=round(s.busy_s, 6),
            )
            for s in self._slots
        )
        return PoolStats(
            workers=workers,
            pairs_ok=self._pairs_ok,
            pairs_failed=self._pairs_failed,
            max_in_flight=self._max_in_flight,
            in_flight_limit=self.pool_cfg.actors * self.pool_cfg.max_in_flight_per_actor,
            run_s=round(self._run_s, 6),
        )
