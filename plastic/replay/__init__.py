"""Zarr spike traces: record a learning chat, replay it (exactly or counterfactually), inspect it.

    from plastic.replay import TraceRecorder, TraceReader, ReplayOptions, replay
    with TraceRecorder.attach(plastic_model, "traces.zarr"):   # records as it learns
        ... engine.begin_turn() / observe / generate / end_turn, feedback, undo ...
    result = replay(TraceReader("traces.zarr"), ReplayOptions(verify=True))
    assert result.max_abs_diff == 0.0

Modules (one job each): `schema` (names, dimensions, codecs of format v1, see
docs/trace-format.md), `store` (creating/continuing a store, the writer thread),
`recorder` (the observers that log every weight-changing operation), `reader` (checks,
clipping to the commit marker), `replay` (open loop), `closed_loop` (re-running the
backbone), `export` (`--out`), `analysis` (`plastic inspect`), `plot` (`--plot`).
This package imports `plastic.plasticity`; plasticity never imports it.
"""

from plastic.replay.closed_loop import ClosedLoopResult, closed_loop
from plastic.replay.reader import TraceReader
from plastic.replay.recorder import TraceRecorder
from plastic.replay.replay import OpenLoopReplay, ReplayOptions, ReplayResult, replay

__all__ = [
    "ClosedLoopResult",
    "OpenLoopReplay",
    "ReplayOptions",
    "ReplayResult",
    "TraceReader",
    "TraceRecorder",
    "closed_loop",
    "replay",
]
