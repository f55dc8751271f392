"""The `toonfarm` command: Typer sub-apps, one per noun, behind one error boundary."""

from __future__ import annotations

import os
import sys
from typing import Any

import typer
from typer import _click  # the click that typer ships and its groups are typed against
from typer.core import TyperGroup

from flows.cli import db, export, models, qa, render, serve, shots
from tooncrafter_model.errors import ToonfarmError, TransientError

# Exit statuses beyond the README's 0 (all rendered), 1 (some shots failed) and 2 (bad input), from
# sysexits.h: 75 "temporary failure, try again later", 70 "internal software error".
EXIT_TRANSIENT = 75
EXIT_BUG = 70


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


class _ErrorBoundary(TyperGroup):
    """The one place errors become exits. A ToonfarmError is one line on stderr: bad input exits 2, a
    transient failure 75. Anything else is a bug in toonfarm and says so. TOONFARM_DEBUG=1 shows the
    traceback of either."""

    def invoke(self, ctx: _click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except (typer.Exit, typer.Abort, _click.exceptions.ClickException):  # typer reports these itself
            raise
        except ToonfarmError as exc:
            if os.environ.get("TOONFARM_DEBUG"):
                raise
            typer.echo(f"toonfarm: {_first_line(exc)}", err=True)
            raise typer.Exit(EXIT_TRANSIENT if isinstance(exc, TransientError) else 2) from None
        except Exception as exc:
            if os.environ.get("TOONFARM_DEBUG"):
                raise
            typer.echo(f"toonfarm: unexpected {type(exc).__name__}: {_first_line(exc)}", err=True)
            typer.echo("toonfarm: this is a bug (no error toonfarm explains); run again with TOONFARM_DEBUG=1 "
                       "for the traceback, and report it", err=True)
            raise typer.Exit(EXIT_BUG) from None


app = typer.Typer(
    cls=_ErrorBoundary,
    name="toonfarm",
    help="Render farm for generative cartoon in-betweening.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
app.add_typer(shots.app)
app.add_typer(render.app)
app.add_typer(db.app)
app.add_typer(export.app)
app.add_typer(serve.app)
app.add_typer(qa.app)
app.add_typer(models.app, name="models", help="Model files: convert checkpoints.")


def main() -> None:
    """Console-script entry point."""
    sys.exit(app(prog_name="toonfarm"))
