"""The package's layering (pyproject's `[tool.importlinter]` contracts) holds: no upward
import between `cli`, `replay`, `plasticity`, `rules`/`models` and `kernels_numba`, and no
import cycle between the modules of a package. Run by `python -m pytest`, so CI fails on a
violation."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("importlinter")

ROOT = Path(__file__).resolve().parents[1]
LINT = "from importlinter.cli import lint_imports_command; lint_imports_command()"


def lint_imports(project: Path) -> subprocess.CompletedProcess[str]:
    """`lint-imports` run on the package and pyproject.toml found in `project`."""
    env = {**os.environ, "PYTHONPATH": str(project)}
    return subprocess.run(
        [sys.executable, "-c", LINT, "--no-cache"],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )


def test_layers_and_acyclic_contracts_are_kept() -> None:
    result = lint_imports(ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "2 kept, 0 broken" in result.stdout


def test_an_upward_import_breaks_the_contract(tmp_path: Path) -> None:
    """The check can fail: a copy of the package whose kernels import a rule is refused."""
    shutil.copytree(
        ROOT / "plastic", tmp_path / "plastic", ignore=shutil.ignore_patterns("__pycache__")
    )
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    upward = tmp_path / "plastic" / "kernels_numba" / "upward.py"
    upward.write_text('"""An upward import."""\n\nfrom plastic.rules import backends  # noqa\n')
    result = lint_imports(tmp_path)
    assert result.returncode == 1
    assert "plastic.kernels_numba.upward -> plastic.rules.backends" in result.stdout
