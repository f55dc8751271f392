"""Options shared by several commands, defined once, and the one place CLI values become Settings."""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer
import yaml
from pydantic import ValidationError

from tasks.settings import Settings
from tooncrafter_model.errors import ToonfarmError, TransientError, UserError

ShotListArg = Annotated[
    Path, typer.Argument(help="Shot list: a .yaml or .csv file, or an editorial cut (.otio, .edl).", show_default=False)
]
OutputRootOpt = Annotated[
    Path | None, typer.Option("--output-root", "-o", help="Where renders, versions and the default shot DB go.")
]
DbOpt = Annotated[str | None, typer.Option("--db", help="Shot DB URL, e.g. postgresql+psycopg://farm/shots.")]
RayAddressOpt = Annotated[
    str | None, typer.Option("--ray-address", help="Join this Ray cluster (default: start Ray locally).")
]
ActorsOpt = Annotated[int | None, typer.Option("--actors", help="Workers, each keeping one model loaded.")]
GpusOpt = Annotated[float | None, typer.Option("--gpus-per-actor", help="GPUs booked per worker (0.5 shares one).")]
DeviceOpt = Annotated[str | None, typer.Option("--device", help="Torch device for the models: cpu, cuda, cuda:1.")]
AllowOutsideOpt = Annotated[
    bool | None, typer.Option("--allow-outside-root", help="Let the shot list use files outside its folder.")
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]
DefaultOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--default", "-D", metavar="KEY=VALUE",
        help="A default for every shot, under the list's own defaults (repeatable): fps=24, render.seed=3.",
    ),
]

_CLI_NAMES = {"gpus_per_actor": "actor_gpus"}


def parse_defaults(pairs: list[str] | None) -> dict[str, Any] | None:
    """`--default` values as nested shot fields: `render.seed=3` -> {"render": {"seed": 3}}; each value
    read as YAML (24 is a number, true a flag, [a, b] a list). None when none were given."""
    if not pairs:
        return None
    out: dict[str, Any] = {}
    for pair in pairs:
        key, sep, text = pair.partition("=")
        if not sep or not key.strip():
            raise UserError(f"--default expects KEY=VALUE, got {pair!r}")
        try:
            value = yaml.safe_load(text)
        except yaml.YAMLError:
            raise UserError(f"--default {key}: not a value: {text!r}") from None
        *parents, last = key.strip().split(".")
        node = out
        for part in parents:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise UserError(f"--default {key}: {part} is given a value and fields at once")
        node[last] = value
    return out


def resolve_settings(**cli: Any) -> Settings:
    """Settings from the CLI values given (None = not given), the environment, toonfarm.toml, defaults."""
    given = {_CLI_NAMES.get(k, k): v for k, v in cli.items() if v is not None}
    try:
        return Settings(**given)
    except ValidationError as exc:
        err = exc.errors()[0]
        field = ".".join(str(p) for p in err["loc"]) or "settings"
        raise UserError(f"setting {field}: {err['msg']} (got {err.get('input')!r})") from None


def runtime_defaults(*, verbose: bool = False) -> None:
    """Prefect's and Ray's settings for CLI runs, chosen before either is imported: no telemetry leaves the
    machine, and their own logs stay quiet unless asked for (the CLI shows progress bars instead)."""
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    # The serverless API starts in 8-18 s on an idle machine; Prefect gives it 20 s, so a busy node
    # (another batch, a model loading) failed whole runs before they began.
    os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "180")
    # A run's story goes to its Logs tab at INFO (the API handler) whatever the terminal shows.
    os.environ.setdefault("PREFECT_LOGGING_LOGGERS_PREFECT_FLOW_RUNS_LEVEL", "INFO")
    os.environ.setdefault("PREFECT_LOGGING_LOGGERS_PREFECT_TASK_RUNS_LEVEL", "INFO")
    if not (verbose or os.environ.get("TOONFARM_DEBUG")):
        os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")
        # The terminal has its progress bars and one line per failed shot: a failed shot's task traceback
        # (25 lines) and the run's story stay in the UI; --verbose or TOONFARM_DEBUG=1 shows them here too.
        os.environ.setdefault("PREFECT_LOGGING_HANDLERS_CONSOLE_LEVEL", "CRITICAL")
        os.environ.setdefault("RAY_LOG_TO_DRIVER", "0")
        os.environ.setdefault("RAY_LOGGER_LEVEL", "error")
        for name in ("prefect.flow_runs", "prefect.task_runs"):
            logging.getLogger(name).addFilter(_explained)


def _explained(record: logging.LogRecord) -> bool:
    """Prefect logs a failed flow or task run with its traceback. An error toonfarm explains keeps its one
    line there (the CLI prints it too); the traceback is noise (TOONFARM_DEBUG=1 or --verbose shows it)."""
    if record.exc_info and isinstance(record.exc_info[1], ToonfarmError) and not os.environ.get("TOONFARM_DEBUG"):
        record.exc_info, record.exc_text = None, None
    return True


class PrefectUnavailable(TransientError):
    """Prefect's temporary API did not start in time (a machine busy with other work)."""


@contextmanager
def serverless() -> Iterator[None]:
    """Prefect tuned for a run without a server: no flow heartbeats (nothing would watch them, and
    stopping their thread costs up to a second per flow run). With a server, nothing changes. A temporary
    API that does not start in time is a transient failure, not a bug."""
    from prefect.settings import PREFECT_API_URL, PREFECT_FLOWS_HEARTBEAT_FREQUENCY, temporary_settings

    if PREFECT_API_URL.value():
        yield
        return
    try:
        with temporary_settings(updates={PREFECT_FLOWS_HEARTBEAT_FREQUENCY: None}):
            yield
    except RuntimeError as exc:  # Prefect says this with a bare RuntimeError; its message is the only mark
        if not str(exc).startswith("Timed out while attempting to connect to ephemeral Prefect API server"):
            raise
        raise PrefectUnavailable("Prefect's temporary API did not start in time; try again") from exc
