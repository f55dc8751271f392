"""Comments and docstrings cite what a reader can open: a paper, or the project's own docs."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
# Notes kept outside the repository, as earlier code cited them ("SPEC 6.2", "PARITY.md", "STYLE habit 5").
OUTSIDE = re.compile(r"\bSPEC( section)? \d|\bPARITY\.md\b|\bSTYLE\b|\.\./shared\b")


def test_no_citation_of_notes_outside_the_repository() -> None:
    files = [p for d in ("tooncrafter_model", "shot_db", "cluster", "tasks", "flows", "tests", "bench")
             for p in (ROOT / d).rglob("*.py")] + [ROOT / "pyproject.toml", ROOT / "README.md", ROOT / "ARCHITECTURE.md"]
    bad = [f"{p.relative_to(ROOT)}:{i}: {line.strip()}" for p in files
           for i, line in enumerate(p.read_text().splitlines(), 1) if OUTSIDE.search(line) and p != Path(__file__)]
    assert not bad, "\n".join(bad)
