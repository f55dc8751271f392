"""`toonfarm models ...`: model files."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from tooncrafter_model.errors import UserError

app = typer.Typer(no_args_is_help=True)


@app.command()
def convert(
    checkpoint: Annotated[Path, typer.Argument(help="Official ToonCrafter model.ckpt (or .safetensors).")],
    output: Annotated[Path, typer.Argument(help="The .safetensors file to write.")],
    config: Annotated[Path | None, typer.Option(help="Model YAML (default: the official 512 config).")] = None,
) -> None:
    """Check a checkpoint strictly against the model and write it as safetensors (no pickle on load)."""
    from tooncrafter_model.checkpoint import convert as convert_checkpoint
    from tooncrafter_model.config import from_yaml

    if output.suffix != ".safetensors":
        raise UserError(f"{output}: output must end in .safetensors")
    cfg = from_yaml(config) if config else None
    n = convert_checkpoint(checkpoint, output, cfg)
    typer.echo(f"wrote {output} ({n} tensors, checked strictly)")
