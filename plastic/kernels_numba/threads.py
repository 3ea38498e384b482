"""The Numba thread policy of the whole process, in one place: which threading layer Numba
uses, and how many threads the per-token kernels run on.

Importing this module does not import numba (so `import plastic.kernels_numba` stays cheap);
`kernel_threads` imports it when it first switches the thread count.
"""

from __future__ import annotations

import functools
import os
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

F = TypeVar("F", bound=Callable[..., Any])

THREADING_LAYER_ENV = "NUMBA_THREADING_LAYER"


def prefer_workqueue_threading() -> None:
    """Use Numba's "workqueue" threading layer unless the user chose one.

    Left to itself Numba picks OpenMP, and after any parallel kernel (even one run with one
    thread) its idle workers spin beside torch's own OpenMP threads: every torch op of the
    process then runs ~100x slower on a 2-core machine (measured: 200 small torch ops 35 ms
    before, 3.2 s after one parallel Numba call). "workqueue" has no spinning workers. Set
    NUMBA_THREADING_LAYER to choose another layer. Only effective before the first parallel
    kernel runs, hence called when `plastic.kernels_numba` is imported.
    """
    if THREADING_LAYER_ENV in os.environ:
        return
    numba = sys.modules.get("numba")
    if numba is None:  # numba reads the variable when it is first imported
        os.environ[THREADING_LAYER_ENV] = "workqueue"
    elif numba.config.THREADING_LAYER == "default":
        numba.config.THREADING_LAYER = "workqueue"


# Numba threads for every rule/kernel call the adapters make. One token is ~0.1 ms of serial
# work; a parallel region costs far more, and with Numba's OpenMP layer its idle workers
# then spin and slow the whole process (measured on a loaded 2-core machine: a rule step
# 18 ms instead of 0.4 ms, a probe 22 s instead of 0.7 s). None: leave Numba's setting.
_kernel_threads: list[int | None] = [1]


class _Nesting(threading.local):
    """Per thread (Numba's thread count is per thread): the nesting of kernel_threads()."""

    depth = 0


_nesting = _Nesting()  # only the outermost kernel_threads() of a thread switches


def set_kernel_threads(count: int | None) -> None:
    """Numba threads used by the adapters' kernels (None: Numba's own setting)."""
    if count is not None and count < 1:
        raise ValueError("kernel threads must be >= 1 or None")
    _kernel_threads[0] = count


def get_kernel_threads() -> int | None:
    """The adapters' Numba thread count (None: Numba's own setting)."""
    return _kernel_threads[0]


@contextmanager
def kernel_threads() -> Iterator[None]:
    """Run the block with the adapters' Numba thread count (restored afterwards)."""
    wanted = _kernel_threads[0]
    if _nesting.depth or wanted is None:
        yield
        return
    import numba

    previous = numba.get_num_threads()
    switch = wanted != previous
    if switch:
        numba.set_num_threads(min(wanted, numba.config.NUMBA_NUM_THREADS))
    _nesting.depth += 1
    try:
        yield
    finally:
        _nesting.depth -= 1
        if switch:
            numba.set_num_threads(previous)


def with_kernel_threads(fn: F) -> F:
    """Decorator: run `fn` inside `kernel_threads()`."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        if _nesting.depth:  # already inside: no context-manager overhead on the per-token path
            return fn(*args, **kwargs)
        with kernel_threads():
            return fn(*args, **kwargs)

    return wrapper  # type: ignore[return-value]
