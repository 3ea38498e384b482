"""`--threads` of `chat`, `bench chat`, `replay` and `bench trace`: how many CPU threads
torch and the learning kernels use (`bench adapt --threads` sets torch's alone).

Batch-1 generation is a chain of small products: on a 2-core machine a second torch thread
gains little when the machine is quiet and costs several times over when anything else runs
(measured in `docs/log/2026-12-06-chat-threads.md`), so the chat defaults to one thread.
"""

from __future__ import annotations

from typing import Annotated

import typer

ThreadsOption = Annotated[
    int,
    typer.Option(
        "--threads",
        min=1,
        help="CPU threads for torch and the learning kernels.",
    ),
]


def use_threads(count: int) -> None:
    """Run torch and the adapters' Numba kernels on `count` threads from now on."""
    import torch

    from plastic.kernels_numba.threads import set_kernel_threads

    torch.set_num_threads(count)
    set_kernel_threads(count)
