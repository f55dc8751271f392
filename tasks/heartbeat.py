"""A running batch's heartbeat: how runs on other hosts know this one is alive (tasks/owner.py).

A daemon thread stamps the batch's row with the shot DB's clock every `heartbeat_s`, each beat its own
short transaction. A beat that fails (the database restarting, locked, away) is said in one line and
tried again at the next one: a missed beat never stops the run, and only `dead_after_s` of silence makes
it dead to others.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager

import shot_db
from shot_db import ShotDB
from tasks import record
from tasks.owner import this_process
from tooncrafter_model.errors import one_line

log = logging.getLogger("toonfarm.heartbeat")


@contextmanager
def beating(db: ShotDB, flow_run_id: str, every_s: float) -> Iterator[threading.Thread]:
    """Beat the batch of `flow_run_id` every `every_s` while the block runs, once it is this process's and
    running (record.begin_batch); yields the beating thread. A batch that stops being so after a beat
    (another run found it silent and settled it) is said once, and the beating stops."""
    stop = threading.Event()
    owner = this_process().token

    def beat() -> None:
        beaten = False
        while not stop.wait(every_s):
            try:
                now = record.run(db, lambda s: shot_db.beat_batch(session=s, flow_run_id=flow_run_id, owner=owner))
            except Exception as exc:  # whatever failed, the next beat may not: the run goes on
                log.warning("batch %s: heartbeat missed (%s); trying again in %g s", flow_run_id, one_line(exc), every_s)
                continue
            if beaten and not now:
                log.warning("batch %s: no longer running as this process's; another run settled it after it "
                            "fell silent", flow_run_id)  # fmt: skip
                return
            beaten = beaten or now

    thread = threading.Thread(target=beat, name=f"heartbeat {flow_run_id}", daemon=True)
    thread.start()
    try:
        yield thread
    finally:
        stop.set()
        # A beat in flight may be waiting for the database: the batch does not wait for it (at most one
        # late stamp, and only on a batch still running: one whose run raised, which ends with it).
        thread.join(timeout=1.0)
