"""`inspect --plot`: one PNG with a panel per thing asked (needs the `plot` extra)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from plastic.replay import analysis
from plastic.replay.reader import TraceReader
from plastic.replay.schema import SiteSpec


def plot_report(
    reader: TraceReader, sites: list[SiteSpec], report: dict[str, Any], out: Path
) -> None:
    """Spike rate per step per site (always), weight change per turn and reward if asked."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = len(sites) + ("weights" in report) + ("reward" in report)
    fig, axes = plt.subplots(panels, 1, figsize=(9, 2.4 * panels), squeeze=False)
    row = 0
    for spec in sites:
        ax = axes[row, 0]
        rates = analysis.population_rates(reader, spec, "pre").per_step
        ax.plot(np.arange(rates.size), rates, lw=0.6)
        ax.set_title(f"{spec.key}: mean pre-synaptic rate per rule step")
        ax.set_xlabel("rule step")
        ax.set_ylabel("rate")
        row += 1
    if "weights" in report:
        ax = axes[row, 0]
        for key, entry in report["weights"].items():
            ax.plot([t["norm"] for t in entry["turns"]], marker=".", label=key)
        ax.set_title("||dW||_F per turn")
        ax.set_xlabel("turn")
        ax.legend(fontsize="small")
        row += 1
    if "reward" in report:
        ax = axes[row, 0]
        reward = reader.read("tokens/reward")
        base = reader.read("tokens/baseline")
        ax.plot(np.nan_to_num(reward), lw=0.6, label="reward")
        ax2 = ax.twinx()
        ax2.plot(base, lw=0.8, color="tab:orange", label="baseline (bits)")
        ax.set_title("reward per token and surprise baseline")
        ax.set_xlabel("token")
        row += 1
    fig.tight_layout()
    fig.savefig(out, dpi=100)
    plt.close(fig)
