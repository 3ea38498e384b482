"""`--device`: cpu, cuda (one line without a GPU, never a traceback), and bad names."""

from __future__ import annotations

import pytest

from plastic.cli.device import parse_device
from plastic.errors import ConfigError
from tests.cli.test_errors import assert_one_line_error, run_main


def _no_gpu() -> bool:
    import torch
    from numba import cuda

    return not torch.cuda.is_available() and not cuda.is_available()


def test_cpu_runs_the_cpu_kernels() -> None:
    device = parse_device("cpu")
    assert (device.torch_device, device.rule_backend) == ("cpu", "numba")


def test_a_bad_name_is_one_line() -> None:
    with pytest.raises(ConfigError, match="must be cpu or cuda, not 'gpu'"):
        parse_device("gpu")


@pytest.mark.skipif(not _no_gpu(), reason="a GPU is present: cuda is accepted here")
def test_cuda_without_a_gpu_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NUMBA_ENABLE_CUDASIM", raising=False)
    with pytest.raises(ConfigError, match="no CUDA GPU"):
        parse_device("cuda")
    with pytest.raises(ConfigError, match="no CUDA GPU is visible to torch"):
        parse_device("cuda", rules=False)


@pytest.mark.skipif(not _no_gpu(), reason="a GPU is present: cuda is accepted here")
@pytest.mark.parametrize(
    "argv",
    [
        ["chat", "--prompt", "hi", "--device", "cuda"],
        ["eval", "--data", "README.md", "--device", "cuda"],
        ["replay", "missing.zarr", "--device", "cuda"],
        ["bench", "chat", "--device", "cuda"],
        ["bench", "adapt", "--stream", "README.md", "--device", "cuda"],
        ["bench", "kernels", "--backends", "numba,cuda"],
        ["bench", "train", "--device", "cuda"],
    ],
)
def test_every_command_refuses_cuda_without_a_gpu_in_one_line(
    argv: list[str], capsys, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("NUMBA_ENABLE_CUDASIM", raising=False)
    code, err = run_main(argv, capsys)
    assert_one_line_error(code, err, "no CUDA GPU")
