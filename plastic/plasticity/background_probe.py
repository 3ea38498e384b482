"""The drift guard's probe scored on a worker thread while the reply is generated.

When no active layer learns from the model's own reply, the adapters' state at the end of
a turn is already fixed when the reply starts. The probe (a paragraph of general text the
guard re-scores every turn) can then be scored on the second core while the first one
generates, and the turn's end finds the figure waiting instead of computing it. The
kernels that score release the GIL, and they only read the adapters' state; every engine
call that changes that state first `cancel`s the job (waiting for it: nothing reads while
anything writes), so a figure that is `take`n is the one scoring at the turn's end gives.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor

_worker: list[ThreadPoolExecutor] = []  # one thread for the process, started on first use
_worker_lock = threading.Lock()


def _executor() -> ThreadPoolExecutor:
    with _worker_lock:
        if not _worker:
            _worker.append(ThreadPoolExecutor(1, thread_name_prefix="plastic-probe"))
        return _worker[0]


class BackgroundProbe:
    """One probe score computed ahead on the worker thread; see the module docstring."""

    def __init__(self) -> None:
        self._pending: Future[float] | None = None

    @property
    def pending(self) -> bool:
        """Whether a score was started and neither taken nor cancelled."""
        return self._pending is not None

    def start(self, score: Callable[[], float]) -> None:
        """Run `score()` on the worker (any earlier job is cancelled first)."""
        self.cancel()
        self._pending = _executor().submit(score)

    def take(self) -> float | None:
        """The started score (waiting for it; its error is raised here), or None if none."""
        pending, self._pending = self._pending, None
        return None if pending is None else pending.result()

    def cancel(self) -> None:
        """Forget the started score, after it stops reading the state (errors dropped)."""
        pending, self._pending = self._pending, None
        if pending is not None and not pending.cancel():
            pending.exception()  # waits; an error here would only concern a dropped figure
