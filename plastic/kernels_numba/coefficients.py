"""The constants each rule's kernels read, one immutable record per rule (as Norse's
`LIFParameters`), built once per parameter set by the rule module (`kernel_coefficients`)
and read by name at kernel entry. Float32 unless noted, the precision of the arithmetic.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np


class PairCoefficients(NamedTuple):
    """Pair STDP (`plastic.rules.stdp`)."""

    decay_pre: np.float32  # exp(-1 / tau_pre): the pre trace's decay per step
    decay_post: np.float32  # exp(-1 / tau_post)
    a_plus: np.float32  # potentiation per pre -> post pairing
    a_minus: np.float32  # depression per post -> pre pairing
    w_min: np.float32
    w_max: np.float32
    max_dw: np.float32  # cap on one step's change of a synapse
    soft: np.float32  # 1: multiplicative weight dependence, 0: additive


class EligibilityCoefficients(NamedTuple):
    """Reward-modulated STDP's eligibility (`plastic.rules.rstdp`)."""

    decay_pre: np.float32
    decay_post: np.float32
    a_plus: np.float32
    a_minus: np.float32
    w_min: np.float32
    w_max: np.float32
    soft: np.float32
    decay_elig: float  # float64 holding exactly the float32 factor the reference multiplies by


class OjaCoefficients(NamedTuple):
    """Oja's Hebbian rule (`plastic.rules.hebb`)."""

    gain: np.float32  # the rate estimates' update gain, 1 / tau_rate
    learning_rate: np.float32
    w_min: np.float32
    w_max: np.float32
    max_norm: np.float32  # cap on the Frobenius norm of one update
