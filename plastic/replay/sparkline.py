"""A one-line text chart (inspect's summaries of rates, rewards and weight change)."""

from __future__ import annotations

import numpy as np

SPARK = "▁▂▃▄▅▆▇█"


def sparkline(values: np.ndarray, width: int = 48) -> str:
    """A one-line chart of `values` averaged into `width` bins (NaNs ignored)."""
    values = np.asarray(values, dtype=np.float64)
    if values.size == 0:
        return ""
    bins = np.array_split(values, min(width, values.size))
    means = np.array([np.nanmean(b) if np.isfinite(b).any() else np.nan for b in bins])
    finite = means[np.isfinite(means)]
    if finite.size == 0:
        return " " * len(means)
    lo, hi = float(finite.min()), float(finite.max())
    span = hi - lo if hi > lo else 1.0
    chars = []
    for m in means:
        if not np.isfinite(m):
            chars.append(" ")
        else:
            chars.append(SPARK[min(len(SPARK) - 1, int((m - lo) / span * (len(SPARK) - 1) + 0.5))])
    return "".join(chars)
