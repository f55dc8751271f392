"""The README's examples cannot rot: its shot lists load, and the commands it lists exist."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from flows.cli import app
from tasks.shotlist import load_shotlist

README = (Path(__file__).resolve().parents[2] / "README.md").read_text()


@pytest.mark.parametrize("block", re.findall(r"```yaml\n(.*?)```", README, re.S))
def test_readme_shot_lists_are_valid(block: str, tmp_path: Path) -> None:
    (tmp_path / "shots.yaml").write_text(block)
    shots = load_shotlist(tmp_path / "shots.yaml")
    assert shots.shots and all(s.code.startswith("sq010_sh") for s in shots.shots)


def test_readme_commands_exist() -> None:
    commands = set(re.findall(r"^\| `toonfarm ([a-z]+(?: [a-z]+)?)", README, re.M))
    assert len(commands) >= 10
    for command in commands:
        result = CliRunner().invoke(app, [*command.split(), "--help"])
        assert result.exit_code == 0, (command, result.output)
