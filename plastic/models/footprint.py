"""What a backbone config costs before it is built: parameters, training memory, FLOPs.

Parameter counts are exact (the layer shapes of `spiking_lm.py`, checked against built
models by the tests). Training memory per GPU under DistributedDataParallel (every rank
holds a whole replica) is weights + gradients + AdamW's two moments, all float32, plus an
*estimate* of the activations autograd keeps: values per token fitted (within 6 %, 10
small configs) to what `torch.autograd.graph.saved_tensors_hooks` sees during a training
forward pass, counted at `activation_bytes` per value (2 under bf16 autocast, 4 in float32).
With gradient checkpointing only the checkpoint inputs stay, plus one block's activations
while it is recomputed. The FLOPs per token count the matmuls only (6 x matmul weights,
8 x with checkpointing's second forward); the LIF loops are elementwise on top.

`plastic train` and `plastic bench train` print these figures beside what they measure;
README quotes them for nord-144m.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from plastic.models.config import ModelConfig

FLOAT32 = 4
# training state per parameter: weights, gradients, AdamW exp_avg and exp_avg_sq (float32)
STATE_BYTES_PER_PARAM = 4 * FLOAT32


@dataclass(frozen=True)
class ParameterCounts:
    """Parameters of a config, split where they sit."""

    total: int
    embedding: int  # token embedding
    readout: int  # head weight + bias
    network: int  # everything else: encoder, blocks, final norm

    @property
    def embedding_readout_fraction(self) -> float:
        return (self.embedding + self.readout) / self.total


def parameter_counts(cfg: ModelConfig) -> ParameterCounts:
    """Exact parameter counts of `SpikingLM(cfg)` without building it."""
    d, f, h, v = cfg.d_model, cfg.d_ff, cfg.n_heads, cfg.vocab_size
    mixer = d + d * d + d + 4 * d * d + d // h + d * d + h  # norm, w_in, beta, qkvg, out, decay
    ffn = d + d * f + f + f * d  # norm, w_up, beta, w_down
    network = d + d * d + cfg.n_layers * (mixer + ffn) + d  # encoder beta, w_enc, blocks, norm
    embedding, readout = v * d, v * d + v
    return ParameterCounts(embedding + readout + network, embedding, readout, network)


def activation_values_per_token(cfg: ModelConfig, *, checkpointing: bool) -> float:
    """Values autograd keeps per token during a training step (an estimate; module doc)."""
    d, f, n, t, v = cfg.d_model, cfg.d_ff, cfg.n_layers, cfg.timesteps, cfg.vocab_size
    block = 2.7 * t * (d + f) + 24.3 * d + 1.5 * f
    if not checkpointing:
        return 2.7 * t * d + n * block + 5.0 * d + 1.1 * v
    return 2.1 * t * d + 9.3 * d + 1.0 * v + block  # + the block being recomputed


@dataclass(frozen=True)
class TrainingFootprint:
    """Memory per GPU (bytes) and matmul FLOPs per token of one training configuration."""

    parameters: int
    weights_bytes: int
    grads_bytes: int
    optimizer_bytes: int
    activation_bytes_estimate: int
    total_bytes_estimate: int
    flops_per_token: int

    def to_dict(self) -> dict[str, int]:
        return asdict(self)


def training_footprint(
    cfg: ModelConfig,
    *,
    batch_size: int,
    seq_len: int,
    checkpointing: bool,
    activation_bytes: int = 2,
) -> TrainingFootprint:
    """Memory one DDP rank needs for a step of `batch_size` x `seq_len` tokens (its share of
    the global batch), and the matmul FLOPs per token."""
    counts = parameter_counts(cfg)
    p = counts.total
    values = activation_values_per_token(cfg, checkpointing=checkpointing)
    activations = int(values * batch_size * seq_len * activation_bytes)
    d, f = cfg.d_model, cfg.d_ff
    # the matmul weights: w_enc, the blocks, the head
    matmul = d * d + cfg.n_layers * (6 * d * d + 2 * d * f) + cfg.vocab_size * d
    passes = 8 if checkpointing else 6  # forward 2, backward 4 (+2 for the recompute)
    return TrainingFootprint(
        parameters=p,
        weights_bytes=p * FLOAT32,
        grads_bytes=p * FLOAT32,
        optimizer_bytes=2 * p * FLOAT32,
        activation_bytes_estimate=activations,
        total_bytes_estimate=p * STATE_BYTES_PER_PARAM + activations,
        flops_per_token=passes * matmul,
    )
