"""A no-change re-run of the demo batch against its first run, printed as JSON lines.

    .venv/bin/python bench/rerender.py

Every run goes through the whole flow as `make demo` does (Prefect without a server, local Ray, SQLite,
RIFE on CPU); Prefect's temporary API is started by an untimed warm-up flow first, so no run pays it.
The re-runs must render nothing and make no new version. The first re-run starts at once, while the
temporary API is still digesting the first run's logs and events and Ray's processes are exiting; the
second starts 10 s later, as a re-run after an edit would. Target: the settled re-run at most 5% of the
first run.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from pathlib import Path


def main() -> None:
    from flows.cli.options import runtime_defaults, serverless

    runtime_defaults()  # as `toonfarm demo` runs it
    from prefect import flow

    from flows.render_batch import render_batch
    from tasks.demo import write_demo
    from tasks.settings import Settings

    with serverless():
        flow(name="warm-up")(lambda: None)()
    with tempfile.TemporaryDirectory(prefix="tfrerender-") as tmp:
        shotlist = write_demo(Path(tmp) / "shots")
        settings = Settings(output_root=Path(tmp) / "out")
        runs = []
        for label in ("first", "no-change, at once", "no-change, settled"):
            if label.endswith("settled"):
                time.sleep(10)
            t0 = time.perf_counter()
            with serverless():
                batch = render_batch(str(shotlist), settings)
            runs.append({"run": label, "seconds": round(time.perf_counter() - t0, 3), "summary": batch.summary,
                         "versions": sorted(f"{o.shot_id} {o.status} v{o.version}" for o in batch.outcomes)})
        for rerun in runs[1:]:
            assert rerun["summary"].startswith("rendered 0 pairs") and all("unchanged" in v for v in rerun["versions"])
    for run in runs:
        print(json.dumps({"bench": "rerender", **run}), flush=True)
    ratio = runs[2]["seconds"] / runs[0]["seconds"]
    print(json.dumps({"bench": "rerender", "settled_no_change_over_first": round(ratio, 4), "target": 0.05,
                      "at_once_over_first": round(runs[1]["seconds"] / runs[0]["seconds"], 4),
                      "load_avg_1m": round(os.getloadavg()[0], 2)}), flush=True)


if __name__ == "__main__":
    main()
