"""When the Numba CPU kernels use threads: one row loop, compiled threaded and serial.

A kernel spreads weight rows over threads only when a call has enough work: below
`PARALLEL_MIN_WORK` synapse updates, waking the threads costs more than they save (a
per-token step touches a handful of rows). Each row loop is therefore written once, with
`prange`, and compiled twice by `parallel_and_serial`: with `parallel=True`, and without
it, where `prange` is plain `range`. The kernel picks one per call from the work at hand.
Every row is updated by one thread from start to end, so both twins give the same bits.

The serial twin is compiled from a copy of the function under its own name, because
Numba's on-disk cache (`cache=True`) names a function's entries after its module,
qualified name and first line and keys them by argument types and bytecode, not by
`parallel`: two dispatchers of one function share their entries. Tried with numba 0.68.1:
the twin compiled second loaded the first one's machine code (the "threaded" loop ran on
one thread), and later processes could segfault.

Do not read arrays through NamedTuple attributes inside a `prange` loop: with
`parallel=True`, writes through `record.field[i]` there are silently dropped (numba issues
#5872, #7135, #10338), which is why the row loops take their arrays one by one.
"""

from __future__ import annotations

from collections.abc import Callable
from types import FunctionType

from numba import njit

# Below this many synapse updates in one call, rows are processed serially.
PARALLEL_MIN_WORK = 1 << 16

SERIAL_SUFFIX = "_serial"


def renamed_copy(function: FunctionType, suffix: str) -> FunctionType:
    """The same code and globals under the name `function.__name__ + suffix`."""
    copy = FunctionType(
        function.__code__,
        function.__globals__,
        function.__name__ + suffix,
        function.__defaults__,
        function.__closure__,
    )
    copy.__qualname__ = function.__qualname__ + suffix
    copy.__doc__ = function.__doc__
    return copy


def parallel_and_serial(loop: FunctionType) -> tuple[Callable, Callable]:
    """Compile a row loop written with `prange` twice: (threaded, serial), both cached."""
    threaded = njit(parallel=True, cache=True)(loop)
    serial = njit(cache=True)(renamed_copy(loop, SERIAL_SUFFIX))
    return threaded, serial
