"""What `plastic inspect` computes from a trace: overview, rates, weights, rewards, and
the correlation between per-token spike rate and per-token surprise.

Rates are those of each recorded site's *pre* population (the backbone's spikes the
adapter reads) over the timesteps that carry spikes (a readout step's raster is padded
with an empty first and last row, see `plastic.plasticity.readout`), and, for residual
adapters, of the adapter's own LIF population (post). A neuron is dead if it never fired
in the trace, saturated if it fired in >= 90% of its timesteps.

Rate vs surprise: each recorded rule step of a readout site pairs the spikes of a context
with the token that followed it, whose surprise (bits) under the logits of that context
is in tokens/bits. Pearson's r over those pairs, with two 95% intervals: Fisher's z
(assumes independent pairs) and a moving-block bootstrap over blocks of 32 consecutive
steps (keeps the autocorrelation of text; the honest one).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from plastic.replay import schema as S
from plastic.replay.reader import TraceReader
from plastic.replay.sparkline import sparkline

SATURATED = 0.9
BLOCK = 32
BOOTSTRAP = 2000


def active_rows(spec: S.SiteSpec) -> slice:
    """Rows of a step's pre raster that carry the population's spikes."""
    return slice(1, spec.timesteps - 1) if spec.kind == "readout" else slice(0, spec.timesteps)


@dataclass
class PopulationRates:
    """Rates of one population over a trace."""

    counts: np.ndarray  # spikes per neuron
    per_step: np.ndarray  # mean rate over neurons per step
    timesteps: int  # timesteps per step counted

    def summary(self, top_k: int) -> dict[str, Any]:
        steps = self.per_step.size
        denom = max(steps * self.timesteps, 1)
        rate = self.counts / denom
        order = np.argsort(-self.counts, kind="stable")[:top_k]
        mean = float(rate.mean()) if rate.size else math.nan
        return {
            "neurons": int(rate.size),
            "steps": int(steps),
            "mean_rate": mean,
            "sparsity": 1.0 - mean,
            "dead": int((self.counts == 0).sum()),
            "saturated": int((rate >= SATURATED).sum()),
            "top": [{"neuron": int(i), "rate": float(rate[i])} for i in order],
            "sparkline": sparkline(self.per_step),
            "rate_min_step": float(self.per_step.min()) if steps else math.nan,
            "rate_max_step": float(self.per_step.max()) if steps else math.nan,
        }


def population_rates(reader: TraceReader, spec: S.SiteSpec, which: str) -> PopulationRates:
    """Stream a site's rasters ("pre" or "post") and count spikes."""
    rows = active_rows(spec) if which == "pre" else slice(0, spec.timesteps)
    n = spec.n_pre if which == "pre" else spec.n_post
    counts = np.zeros(n, np.int64)
    per_step = []
    total = reader.length(f"{spec.group}/{which}")
    for start in range(0, total, S.STEP_CHUNK * 4):
        block = reader.read(f"{spec.group}/{which}", start, start + S.STEP_CHUNK * 4)[:, rows]
        counts += block.sum(axis=(0, 1), dtype=np.int64)
        per_step.append(block.mean(axis=(1, 2), dtype=np.float64))
    t = len(range(*rows.indices(spec.timesteps)))
    return PopulationRates(counts, np.concatenate(per_step) if per_step else np.zeros(0), t)


def network_rates(reader: TraceReader, site: str) -> PopulationRates:
    """Stream a backbone site's per-token spike counts (tokens with unknown counts skipped):
    spikes per neuron and the mean rate over neurons per token."""
    entry = next(e for e in reader.network_sites() if e["site"] == site)
    t = int(entry["timesteps"])
    counts = np.zeros(int(entry["neurons"]), np.int64)
    per_token = []
    for start in range(0, reader.n_tokens, S.NETWORK_CHUNK * 8):
        block = reader.network_counts(site, start, start + S.NETWORK_CHUNK * 8)
        block = block[~(block == S.NETWORK_UNKNOWN).any(axis=1)]
        counts += block.sum(axis=0, dtype=np.int64)
        per_token.append(block.mean(axis=1, dtype=np.float64) / t)
    return PopulationRates(counts, np.concatenate(per_token) if per_token else np.zeros(0), t)


def network_report(
    reader: TraceReader, sites: list[str] | None = None, top_k: int = 5
) -> dict[str, Any]:
    """Rate, sparsity, dead and saturated neurons, top neurons per backbone site (every
    site recorded, or `sites`), over the tokens of the trace."""
    names = [e["site"] for e in reader.network_sites()]
    return {
        name: network_rates(reader, name).summary(top_k)
        for name in names
        if sites is None or name in sites
    }


def rates_report(reader: TraceReader, sites: list[S.SiteSpec], top_k: int = 5) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for spec in sites:
        if spec.records_reads:  # no spiking population: how it predicted the user text
            from plastic.replay.memory_report import memory_reading

            out[spec.key] = {"kind": spec.kind, "reading": memory_reading(reader, spec)}
            continue
        entry = {"kind": spec.kind, "pre": population_rates(reader, spec, "pre").summary(top_k)}
        if spec.kind == "residual":
            entry["post"] = population_rates(reader, spec, "post").summary(top_k)
        out[spec.key] = entry
    return out


def rate_surprise(reader: TraceReader, spec: S.SiteSpec, seed: int = 0) -> dict[str, Any]:
    """Pearson r between a step's context spike rate and the surprise of its token."""
    rates = population_rates(reader, spec, "pre").per_step
    tokens = reader.read(f"{spec.group}/token")
    bits = reader.read("tokens/bits")
    ok = (tokens >= 0) & (tokens < bits.size)
    x = rates[ok]
    y = bits[tokens[ok]].astype(np.float64)
    finite = np.isfinite(y)
    x, y = x[finite], y[finite]
    n = int(x.size)
    result: dict[str, Any] = {"site": spec.key, "n": n, "r": None}
    if n < 4 or x.std() == 0 or y.std() == 0:
        result["note"] = "too few learnt tokens (or no variation) for a correlation"
        return result
    r = float(np.corrcoef(x, y)[0, 1])
    z, half = math.atanh(max(min(r, 0.999999), -0.999999)), 1.959964 / math.sqrt(n - 3)
    result.update(
        {
            "r": r,
            "fisher_ci95": [math.tanh(z - half), math.tanh(z + half)],
            "bootstrap_ci95": _block_bootstrap(x, y, seed),
            "mean_rate": float(x.mean()),
            "mean_bits": float(y.mean()),
        }
    )
    return result


def _block_bootstrap(x: np.ndarray, y: np.ndarray, seed: int) -> list[float] | None:
    """95% percentile interval of r from a moving-block bootstrap (blocks of BLOCK)."""
    n = x.size
    block = min(BLOCK, max(1, n // 4))
    starts_max = n - block + 1
    if starts_max < 2:
        return None
    rng = np.random.default_rng(seed)
    k = int(math.ceil(n / block))
    offsets = np.arange(block)
    values = []
    for _ in range(BOOTSTRAP):
        idx = (rng.integers(0, starts_max, k)[:, None] + offsets).reshape(-1)[:n]
        xs, ys = x[idx], y[idx]
        if xs.std() > 0 and ys.std() > 0:
            values.append(np.corrcoef(xs, ys)[0, 1])
    if len(values) < 100:
        return None
    lo, hi = np.percentile(values, [2.5, 97.5])
    return [float(lo), float(hi)]


def reward_report(reader: TraceReader) -> dict[str, Any]:
    reward = reader.read("tokens/reward").astype(np.float64)
    base = reader.read("tokens/baseline").astype(np.float64)
    bits = reader.read("tokens/bits").astype(np.float64)
    kinds = reader.read("events/kind")
    values = reader.read("events/value")
    feedback = values[kinds == S.FEEDBACK]
    given = np.isfinite(reward)
    return {
        "tokens": int(reward.size),
        "rewarded_tokens": int(given.sum()),
        "reward_mean": float(reward[given].mean()) if given.any() else None,
        "reward_sum": float(reward[given].sum()) if given.any() else 0.0,
        "reward_sparkline": sparkline(np.where(given, reward, 0.0)),
        "baseline_last": float(base[np.isfinite(base)][-1]) if np.isfinite(base).any() else None,
        "baseline_sparkline": sparkline(base),
        "surprise_mean_bits": float(np.nanmean(bits)) if np.isfinite(bits).any() else None,
        "surprise_sparkline": sparkline(bits),
        "feedback": [float(v) for v in feedback],
    }


def weights_report(reader: TraceReader, sites: list[S.SiteSpec]) -> dict[str, Any]:
    """||W_end - W_start||_F per committed turn and site (by an exact open-loop replay)."""
    from plastic.replay.replay import OpenLoopReplay, ReplayOptions

    kinds = reader.read("turns/kind")
    starts = reader.read("turns/start_event")
    ends = reader.read("turns/end_event")
    picks = [i for i, k in enumerate(kinds) if k in (S.TURN, S.FEEDBACK_TURN, S.UNDO_TURN)]
    at = sorted({int(starts[i]) for i in picks} | {int(ends[i]) for i in picks})
    seen: dict[int, dict[str, np.ndarray]] = {}

    def grab(event: int, synapses: dict[str, Any]) -> None:
        seen[event] = {
            spec.key: (
                synapses[spec.key].state_arrays()
                if spec.records_reads
                else synapses[spec.key].weights.copy()
            )
            for spec in sites
        }

    OpenLoopReplay(reader, ReplayOptions(at_events=tuple(at), at_event=grab)).run()
    per_site: dict[str, Any] = {}
    for spec in sites:
        norms = []
        for i in picks:
            a, b = seen.get(int(starts[i])), seen.get(int(ends[i]))
            if a is None or b is None:
                continue
            if spec.records_reads:
                from plastic.replay.memory_report import weight_change

                norm = weight_change(b[spec.key], a[spec.key])
            else:
                norm = float(np.linalg.norm(b[spec.key].astype(np.float64) - a[spec.key]))
            norms.append({"turn": i, "kind": S.TURN_NAMES[int(kinds[i])], "norm": norm})
        values = np.array([n["norm"] for n in norms])
        per_site[spec.key] = {
            "turns": norms,
            "distribution": _quantiles(values),
            "sparkline": sparkline(values),
        }
    return per_site


def _quantiles(values: np.ndarray) -> dict[str, float] | None:
    if values.size == 0:
        return None
    q = np.percentile(values, [0, 25, 50, 75, 100])
    return dict(zip(("min", "p25", "median", "p75", "max"), map(float, q), strict=True))


def overview(reader: TraceReader) -> dict[str, Any]:
    """Sessions, sizes, and bytes per token on disk (spike rasters and everything)."""
    n = max(reader.n_tokens, 1)
    sites = {}
    for spec in reader.sites:
        if spec.records_reads:
            from plastic.replay.memory_report import memory_overview

            sites[spec.key] = memory_overview(reader, spec)
            continue
        raster = reader.nbytes_stored(f"{spec.group}/pre") + reader.nbytes_stored(
            f"{spec.group}/post"
        )
        sites[spec.key] = {
            "kind": spec.kind,
            "steps": reader.length(f"{spec.group}/pre"),
            "raster_shape": [spec.timesteps, spec.n_pre, spec.n_post],
            "raster_bytes": raster,
            "raster_bytes_per_token": raster / n,
        }
    total = reader.nbytes_stored()
    kinds = reader.read("turns/kind")
    return {
        "path": str(reader.path),
        "schema_version": reader.attrs["plastic_trace"]["version"],
        "plastic_version": reader.attrs.get("plastic_version"),
        "backbone": reader.attrs["backbone"],
        "rule": reader.attrs.get("rule"),
        "reward": reader.attrs.get("reward"),
        "sessions": len(reader.sessions),
        "tokens": reader.n_tokens,
        "events": reader.n_events,
        "turns": {name: int((kinds == k).sum()) for k, name in S.TURN_NAMES.items()},
        "checkpoints": int(reader.committed["checkpoints"]),
        "bytes": total,
        "bytes_per_token": total / n,
        "sites": sites,
    }
