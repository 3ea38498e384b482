"""Running reward baseline of three-factor rules (Frémaux & Gerstner 2016).

Weights change in proportion to (reward - baseline), where the baseline is a running mean
of past rewards. Without it, any positive mean reward turns every coincidence into
potentiation and unrewarded activity drifts the weights.

    modulation = r - b          (b before this reward is included)
    b         <- b + (r - b) / baseline_tau        (baseline_tau in rewards; 0 = b stays 0)
"""

from __future__ import annotations


def reward_modulation(reward: float, baseline: float, baseline_tau: float) -> tuple[float, float]:
    """(r - b, updated b) for one reward."""
    modulation = reward - baseline
    if baseline_tau > 0:
        baseline = baseline + (reward - baseline) / baseline_tau
    return modulation, baseline
