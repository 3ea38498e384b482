"""Installing a test plugin package out of tree: pip into a private target directory (never
into the venv), and the environment that puts it on the path of a child process."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest

PYPROJECT = """
[build-system]
requires = ["setuptools>=68"]
build-backend = "setuptools.build_meta"

[project]
name = "{dist}"
version = "0.0.1"

[project.entry-points."{group}"]
{entry} = "{target}"

[tool.setuptools]
packages = ["{package}"]
"""


def pip_install_plugin(
    root: Path, dist: str, package: str, entry_point: tuple[str, str, str], module: str
) -> Path:
    """Write distribution `dist` (version 0.0.1) of package `package`, whose `__init__.py`
    is `module`, declaring `entry_point` (group, name, target), under `root`; pip-install
    it into `root/site` and return that directory."""
    group, entry, target = entry_point
    source = root / "src"
    (source / package).mkdir(parents=True)
    pyproject = PYPROJECT.format(
        dist=dist, group=group, entry=entry, target=target, package=package
    )
    (source / "pyproject.toml").write_text(pyproject)
    (source / package / "__init__.py").write_text(textwrap.dedent(module))
    target = root / "site"
    command = [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-index"]
    command += ["--no-build-isolation", "--target", str(target), str(source)]
    result = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert (target / package).is_dir()
    return target


def env_with(*paths: Path, **extra: str) -> dict[str, str]:
    """This process's environment with `paths` first on PYTHONPATH and `extra` set."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([*map(str, paths), env.get("PYTHONPATH", "")])
    env.update(extra)
    return env


def installed_plugin_fixture(
    dist: str, package: str, entry_point: tuple[str, str, str], module: str
) -> Callable[..., Path]:
    """A module-scoped fixture that pip-installs the plugin once (see `pip_install_plugin`)
    and gives its site directory."""

    @pytest.fixture(scope="module")
    def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
        root = tmp_path_factory.mktemp(package)
        return pip_install_plugin(root, dist, package, entry_point, module)

    return installed
