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

# Everything each package may import beside the standard library and itself: the packages below it and
# the third-party ones it owns. No wildcards: torch stays in the model, ray in cluster, SQL in shot_db.
ALLOWED: dict[str, set[str]] = {
    "tooncrafter_model": {"torch", "numpy", "einops", "safetensors", "ftfy", "regex", "yaml"},
    "shot_db": {"sqlalchemy", "alembic"},
    "cluster": {"tooncrafter_model", "ray", "numpy"},
    "tasks": {
        "tooncrafter_model", "shot_db", "cluster", "prefect", "pydantic", "pydantic_core", "pydantic_settings",
        "numpy", "cv2", "ffmpeg", "imageio_ffmpeg", "scenedetect", "yaml", "watchfiles", "opentimelineio",
        "PyOpenColorIO",
    },
    # shot_db for the records the history commands print, tooncrafter_model for the error types, yaml for
    # the values of --default
    "flows": {"tasks", "shot_db", "tooncrafter_model", "prefect", "pydantic", "typer", "rich", "yaml"},
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
        bad += [f"{path.relative_to(ROOT)} imports {name}" for name in sorted(_imports(path))
                if name not in allowed and name not in sys.stdlib_module_names]
    assert not bad, "\n".join(bad)


def test_no_package_imports_one_above_it() -> None:
    """The table is a layering: tooncrafter_model and shot_db at the bottom (neither imports the other),
    cluster above the model, tasks above those, flows on top."""
    for package, allowed in ALLOWED.items():
        inner = allowed & set(PACKAGES)
        assert package not in inner
        assert all(package not in ALLOWED[other] for other in inner), f"{package} and one of {inner} import each other"
    assert "shot_db" not in ALLOWED["tooncrafter_model"] and "tooncrafter_model" not in ALLOWED["shot_db"]


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


def test_backend_names_live_in_the_registry() -> None:
    """No module but the registry and a backend's own names a backend: a new one is a module plus an entry."""
    from tooncrafter_model.backend import BACKENDS

    own = {ROOT / (spec.factory.split(":")[0].replace(".", "/") + ".py"): name for name, spec in BACKENDS.items()}
    bad = []
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            if path == ROOT / "tooncrafter_model/backend.py" or "migrations" in path.parts:
                continue
            for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
                if isinstance(node, ast.Constant) and node.value in BACKENDS and own.get(path) != node.value:
                    bad.append(f"{path.relative_to(ROOT)}:{node.lineno} names the {node.value!r} backend")
    assert not bad, "\n".join(bad)
