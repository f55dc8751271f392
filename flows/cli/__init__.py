"""The `toonfarm` command: Typer sub-apps, one per noun, behind one error boundary."""

from __future__ import annotations

import os
import sys
from typing import Any

import typer
from typer import _click  # the click that typer ships and its groups are typed against
from typer.core import TyperGroup

from flows.cli import db, models, qa, render, serve, shots


class _ErrorBoundary(TyperGroup):
    """Turns every error a user can cause into one line on stderr and a non-zero exit, never a traceback."""

    def invoke(self, ctx: _click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except (typer.Exit, typer.Abort):  # typer's own exits, RuntimeError subclasses
            raise
        except (ValueError, OSError, RuntimeError) as exc:
            if os.environ.get("TOONFARM_DEBUG"):
                raise
            message = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            typer.echo(f"toonfarm: {message}", err=True)
            raise typer.Exit(2) from None


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
app.add_typer(serve.app)
app.add_typer(qa.app)
app.add_typer(models.app, name="models", help="Model files: convert checkpoints.")


def main() -> None:
    """Console-script entry point."""
    sys.exit(app(prog_name="toonfarm"))
