"""The CLI's progress bars follow the pipeline's events, including the tries the QA policy adds."""

from __future__ import annotations

import io
import logging

from rich.console import Console

from flows.cli.progress import progress_bars


def _event(kind: str, **fields: object) -> None:
    logging.getLogger("toonfarm.progress").debug(kind, extra={"toonfarm": {"event": kind, **fields}})


def test_bars_count_planned_rendered_and_added_tries() -> None:
    out = io.StringIO()
    with progress_bars(Console(file=out, width=100), shots=2):
        _event("planned", shot="a")
        _event("planned", shot="b")
        _event("rendering", pairs=2, shots=2)
        _event("try")  # a flagged pair rendered again: three pairs in all
        for _ in range(3):
            _event("pair", shot="a", ok=True)
        _event("published", shot="a", status="new-version")
    last = {line.split("  ")[0]: line.split()[-2] for line in out.getvalue().splitlines() if line.strip()}
    assert last == {"planning shots": "2/2", "rendering pairs": "3/3", "publishing shots": "1/2"}
