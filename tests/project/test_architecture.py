"""The package map of ARCHITECTURE.md, enforced: who may import what, and imports without side effects."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("tooncrafter_model", "shot_db", "cluster", "tasks", "flows")

# Third-party imports each package may use, beside the standard library and the packages below it.
ALLOWED: dict[str, set[str]] = {
    "tooncrafter_model": {"torch", "numpy", "einops", "safetensors", "ftfy", "regex", "yaml"},
    "shot_db": {"sqlalchemy", "alembic"},
    "cluster": {"ray", "numpy", "tooncrafter_model"},
    "tasks": {"*"},
    "flows": {"*"},
}
FORBIDDEN_INTERNAL: dict[str, set[str]] = {
    "tooncrafter_model": {"shot_db", "cluster", "tasks", "flows"},
    "shot_db": {"tooncrafter_model", "cluster", "tasks", "flows"},
    "cluster": {"shot_db", "tasks", "flows"},
    "tasks": {"flows"},
    "flows": set(),
}
# The exceptions documented in ARCHITECTURE.md: image files are read and written with OpenCV, and the
# quality scores and the defects that test them are image processing (colour spaces, morphology, flow).
EXTRA = {
    ("tooncrafter_model", "frames.py"): {"cv2"},
    ("tooncrafter_model", "quality.py"): {"cv2"},
    ("tooncrafter_model", "defects.py"): {"cv2"},
}


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(a.name.split(".")[0] for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return names


@pytest.mark.parametrize("package", PACKAGES)
def test_dependency_direction(package: str) -> None:
    bad = []
    for path in sorted((ROOT / package).rglob("*.py")):
        allowed = ALLOWED[package] | EXTRA.get((package, path.name), set()) | {package}
        for name in _imports(path):
            if name in FORBIDDEN_INTERNAL[package]:
                bad.append(f"{path.relative_to(ROOT)} imports {name}")
            elif name in sys.stdlib_module_names or "*" in allowed:
                continue
            elif name not in allowed:
                bad.append(f"{path.relative_to(ROOT)} imports {name}")
    assert not bad, "\n".join(bad)


def test_imports_have_no_side_effects(tmp_path: Path) -> None:
    """Importing every module touches no CUDA, no network, no database, no Ray and no files."""
    modules = sorted(
        ".".join(p.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")
        for pkg in PACKAGES
        for p in (ROOT / pkg).rglob("*.py")
        if "migrations" not in p.parts
    )
    home, work = tmp_path / "home", tmp_path / "work"
    home.mkdir()
    work.mkdir()
    script = textwrap.dedent(
        f"""
        import importlib, json, os, socket, sys
        sys.path.insert(0, {str(ROOT)!r})
        # the heavy third-party packages are imported first: their own start-up is not ours to judge
        for dep in ("torch", "numpy", "sqlalchemy", "prefect", "ray", "cv2", "typer", "pydantic_settings"):
            importlib.import_module(dep)
        before = {{p: sorted(os.listdir(p)) for p in ({str(home)!r}, {str(work)!r})}}
        calls = []
        def _connect(self, *a, **k):
            calls.append(repr(a))
            raise OSError("network touched at import")
        socket.socket.connect = _connect
        for m in {modules!r}:
            importlib.import_module(m)
        import torch, ray
        after = {{p: sorted(os.listdir(p)) for p in before}}
        print(json.dumps({{"cuda": torch.cuda.is_initialized(), "ray": ray.is_initialized(),
                          "connects": calls, "files_changed": before != after}}))
        """
    )
    env = {"HOME": str(home), "PATH": "/usr/bin:/bin", "PREFECT_HOME": str(home / ".prefect"),
           "PREFECT_SERVER_ANALYTICS_ENABLED": "false"}
    run = subprocess.run([sys.executable, "-c", script], cwd=work, env=env, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-3000:]
    report = json.loads(run.stdout.strip().splitlines()[-1])
    assert report == {"cuda": False, "ray": False, "connects": [], "files_changed": False}
