"""Exit codes of the installed `plastic`, run as a subprocess: 0 ok, 1 input error or failed
check/verify, 2 usage, 130 Ctrl-C, and the code of any `typer.Exit(n)`."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[2]
ENV = {**os.environ, "NUMBA_NUM_THREADS": "1", "OMP_NUM_THREADS": "1"}


def plastic_command() -> list[str]:
    """The installed console script (beside this Python), else `python -m plastic.cli.main`."""
    script = Path(sys.executable).parent / "plastic"
    if script.is_file():
        return [str(script)]
    found = shutil.which("plastic")
    return [found] if found else [sys.executable, "-m", "plastic.cli.main"]


def plastic(*args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run(
        [*plastic_command(), *args], capture_output=True, text=True, env=ENV, timeout=timeout
    )


@pytest.fixture(scope="module")
def store(tmp_path_factory) -> Path:
    from tests.replay.conftest import record_plain, save_small_model

    torch.set_num_threads(1)
    root = tmp_path_factory.mktemp("exit-codes")
    path = root / "good.zarr"
    record_plain(path, save_small_model(root / "model"), turns=1)
    return path


def test_usage_errors_exit_2() -> None:
    assert plastic("inspect").returncode == 2
    assert plastic("--no-such-option").returncode == 2


def test_input_error_exits_1(tmp_path: Path) -> None:
    done = plastic("inspect", str(tmp_path / "missing.zarr"))
    assert done.returncode == 1
    assert done.stderr.strip().splitlines() == [
        f"error: {tmp_path / 'missing.zarr'}: no such trace store"
    ]


def test_typer_exit_code_is_the_exit_status() -> None:
    """`raise typer.Exit(n)` in a command (as `bench ... --check` does) exits n, not 0."""
    code = (
        "import typer\n"
        "from plastic.cli import main\n"
        "from plastic.cli.app import app\n"
        "@app.command('exit-three')\n"
        "def exit_three() -> None:\n"
        "    raise typer.Exit(3)\n"
        "main.main(['exit-three'])\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, env=ENV, timeout=60)
    assert done.returncode == 3, done.stderr


def test_check_and_verify_exit_0_on_a_good_store_and_1_on_a_damaged_one(
    store: Path, tmp_path: Path
) -> None:
    assert plastic("inspect", str(store), "--check").returncode == 0
    damaged = tmp_path / "damaged.zarr"
    shutil.copytree(store, damaged)
    elig = damaged / "sites" / "site0" / "rule_state" / "rstdp" / "eligibility" / "c"
    next(p for p in elig.rglob("*") if p.is_file()).unlink()
    for args in (["inspect", "--check"], ["replay", "--verify", "--json"]):
        done = plastic(args[0], str(damaged), *args[1:])
        assert done.returncode == 1, (args, done.stdout, done.stderr)
        assert "trace damaged at" in done.stderr and "Traceback" not in done.stderr


@pytest.mark.skipif(not hasattr(signal, "SIGINT"), reason="needs SIGINT")
def test_ctrl_c_exits_130(tmp_path: Path) -> None:
    """Ctrl-C during `plastic train` saves at the next step boundary and exits 130."""
    data = tmp_path / "train.txt"
    data.write_text("the neuron fires and the synapse learns. " * 200)
    out = tmp_path / "run"
    argv = [*plastic_command(), "train", "--data", str(data), "--out", str(out), "--steps"]
    argv += ["100000", "--batch-size", "1", "--seq-len", "8", "--no-compile"]
    proc = subprocess.Popen(argv, stderr=subprocess.PIPE, text=True, env=ENV)
    try:
        assert proc.stderr is not None
        for line in proc.stderr:  # the run has started once it says so
            if "starting" in line:
                break
        time.sleep(1.0)
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 130, err
    assert "interrupted at step" in err and (out / "train_state.json").is_file()
