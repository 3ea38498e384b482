"""`inspect --plot`: one PNG with a panel per thing shown (needs the `plot` extra).

Always: a spike raster of one site over a window of tokens (a backbone site: spikes per
neuron per token, from network/<site>; an adapter site: its pre-synaptic rasters, one
column per timestep of the rule steps in the window), and each adapter site's weight
change from the session's start to the last checkpoint as a heatmap. Then, as asked: mean
rate per rule step per adapter site (--rates), ||dW||_F per turn (--weights), reward and
surprise baseline per token (--reward). Every axis is labelled; every line has a legend.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from plastic.replay import analysis
from plastic.replay.reader import TraceReader
from plastic.replay.schema import GENERATED, SiteSpec

RASTER_TOKENS = 200  # default window: the last RASTER_TOKENS tokens


def plot_report(
    reader: TraceReader,
    sites: list[SiteSpec],
    report: dict[str, Any],
    out: Path,
    *,
    raster_site: str | None = None,
    window: tuple[int, int] | None = None,
) -> None:
    """Write the figure described in the module docstring to `out`."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    if window is None:
        window = (max(0, reader.n_tokens - RASTER_TOKENS), reader.n_tokens)
    sites = [spec for spec in sites if not spec.records_reads]  # no weight matrix, no rasters
    heatmaps = [spec for spec in sites if reader.checkpoints()]
    rates = sites if "rates" in report else []
    panels = (
        (raster_site is not None)
        + len(heatmaps)
        + len(rates)
        + ("weights" in report)
        + ("reward" in report)
    )
    fig, axes = plt.subplots(max(panels, 1), 1, figsize=(10, 3.2 * max(panels, 1)), squeeze=False)
    row = iter(axes[:, 0])
    if raster_site is not None:
        _raster(fig, next(row), reader, raster_site, window)
    for spec in heatmaps:
        _weight_heatmap(fig, next(row), reader, spec)
    for spec in rates:
        ax = next(row)
        per_step = analysis.population_rates(reader, spec, "pre").per_step
        ax.plot(np.arange(per_step.size), per_step, lw=0.6, label=f"{spec.key} pre")
        ax.set_title(f"{spec.key}: mean pre-synaptic rate per rule step")
        ax.set_xlabel("rule step")
        ax.set_ylabel("spikes per neuron per timestep")
        ax.legend(loc="upper right", fontsize="small")
    if "weights" in report:
        ax = next(row)
        for key, entry in report["weights"].items():
            ax.plot([t["norm"] for t in entry["turns"]], marker=".", label=key)
        ax.set_title("weight change per turn record (turns, feedback, undo)")
        ax.set_xlabel("turn record")
        ax.set_ylabel("||W_end - W_start||_F")
        ax.legend(loc="upper right", fontsize="small")
    if "reward" in report:
        _reward(next(row), reader)
    fig.tight_layout()
    fig.savefig(out, dpi=100)
    plt.close(fig)


def _raster(fig: Any, ax: Any, reader: TraceReader, site: str, window: tuple[int, int]) -> None:
    """Spikes of `site` over tokens [start, stop): counts per token (backbone site) or the
    adapter's pre-synaptic raster per timestep (adapter site)."""
    start, stop = window
    backbone = {e["site"]: e for e in reader.network_sites()}
    if site in backbone:
        counts = reader.network_counts(site, start, stop).astype(np.float32)
        counts[counts == 255] = np.nan
        image = ax.imshow(
            counts.T,
            aspect="auto",
            interpolation="nearest",
            cmap="Greys",
            extent=(start - 0.5, stop - 0.5, counts.shape[1] - 0.5, -0.5),
            vmin=0,
            vmax=backbone[site]["timesteps"],
        )
        bar = fig.colorbar(image, ax=ax)
        bar.set_label(f"spikes per token (of {backbone[site]['timesteps']} timesteps)")
        flags = reader.read("tokens/flags", start, stop)
        generated = np.flatnonzero(flags & GENERATED) + start
        if generated.size:
            ax.plot(generated, np.full(generated.size, -1.5), "|", color="tab:red",
                    ms=4, label="model's reply tokens")  # fmt: skip
            ax.legend(loc="upper right", fontsize="small")
        ax.set_title(f"spike raster: backbone site {site}, tokens {start:,}-{stop:,}")
        ax.set_xlabel("token")
        ax.set_ylabel("neuron")
        return
    spec = reader.site(site)
    steps = reader.read(f"{spec.group}/token")
    picked = np.flatnonzero((steps >= start) & (steps < stop))
    if picked.size == 0:
        ax.set_title(f"spike raster: {spec.key}: no rule steps in tokens {start:,}-{stop:,}")
        ax.set_xlabel("timestep")
        ax.set_ylabel("pre-synaptic neuron")
        return
    pre = reader.read(f"{spec.group}/pre", int(picked[0]), int(picked[-1]) + 1)
    pre = pre[:, analysis.active_rows(spec)]
    image = pre.reshape(-1, pre.shape[-1]).T.astype(np.uint8)
    ax.imshow(image, aspect="auto", interpolation="nearest", cmap="Greys", vmin=0, vmax=1)
    ax.set_title(
        f"spike raster: {spec.key} pre-synaptic neurons, rule steps {int(picked[0]):,}-"
        f"{int(picked[-1]):,} (tokens {start:,}-{stop:,}); black = spike"
    )
    ax.set_xlabel("timestep (rule steps x their timesteps)")
    ax.set_ylabel("pre-synaptic neuron")


def _weight_heatmap(fig: Any, ax: Any, reader: TraceReader, spec: SiteSpec) -> None:
    """W at the last checkpoint minus W at the first session's start, as an image."""
    session = reader.sessions[0]
    rule = session["adapters"][spec.adapter]["rule"]
    start = reader.state(spec, int(session["state"]), rule)[0].astype(np.float64)
    last = reader.checkpoints()[-1]
    change = reader.checkpoint_weights(spec, last.index).astype(np.float64) - start
    limit = float(np.abs(change).max()) or 1.0
    image = ax.imshow(
        change, aspect="auto", interpolation="nearest", cmap="RdBu_r", vmin=-limit, vmax=limit
    )
    bar = fig.colorbar(image, ax=ax)
    bar.set_label("weight change (last checkpoint - start)")
    ax.set_title(
        f"{spec.key}: weight change over {last.turn} turn records "
        f"(||dW||_F = {np.linalg.norm(change):.3g})"
    )
    ax.set_xlabel("post-synaptic neuron" + (" (token id)" if spec.kind == "readout" else ""))
    ax.set_ylabel("pre-synaptic neuron")


def _reward(ax: Any, reader: TraceReader) -> None:
    """Reward per token (left axis) and the surprise baseline (right axis), one legend."""
    reward = reader.read("tokens/reward")
    base = reader.read("tokens/baseline")
    (a,) = ax.plot(np.nan_to_num(reward), lw=0.6, label="reward (0 where none)")
    ax.set_ylabel("reward")
    ax2 = ax.twinx()
    (b,) = ax2.plot(base, lw=0.8, color="tab:orange", label="surprise baseline (bits)")
    ax2.set_ylabel("surprise baseline (bits/token)")
    ax.set_title("reward per token and surprise baseline")
    ax.set_xlabel("token")
    ax.legend(handles=[a, b], loc="upper right", fontsize="small")
