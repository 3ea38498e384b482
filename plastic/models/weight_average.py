"""The uniform mean of a model's weights over the last part of a training run (stochastic
weight averaging, Izmailov et al. 2018, "Averaging Weights Leads to Wider Optima and Better
Generalization", eq. 2: w_swa <- (w_swa * n + w) / (n + 1)), kept during the run so that it
is part of the run's output and of its exact resume, not a step after it.
"""

from __future__ import annotations

import torch

from plastic.models.spiking_lm import SpikingLM


class TailAverage:
    """Running mean of the floating tensors of a model's state, over every step whose
    progress (0..1, after the step) is past `1 - tail`; `tail` 0 keeps no average."""

    PREFIX = "average."  # of its tensors in the run's train state

    def __init__(self, tail: float) -> None:
        self.tail = tail
        self.count = 0
        self.mean: dict[str, torch.Tensor] = {}

    def covers(self, progress: float) -> bool:
        return self.tail > 0 and progress > 1.0 - self.tail

    @torch.no_grad()
    def update(self, model: SpikingLM) -> None:
        """Fold the model's current weights into the mean."""
        self.count += 1
        for name, value in model.state_dict().items():
            if not value.is_floating_point():
                continue
            if name not in self.mean:
                self.mean[name] = value.detach().clone()
            else:
                mean = self.mean[name]
                mean.add_(value.detach() - mean, alpha=1.0 / self.count)

    def averaged_model(self, model: SpikingLM) -> SpikingLM:
        """A new model (eval mode, on `model`'s device, where it is scored) with `model`'s
        config and the mean weights."""
        averaged = SpikingLM(model.config).to(next(model.parameters()).device)
        averaged.load_state_dict({**model.state_dict(), **self.mean})
        return averaged.eval()

    def state_tensors(self) -> dict[str, torch.Tensor]:
        """The mean, to save beside the optimizer state (empty while nothing is averaged)."""
        return {self.PREFIX + k: v.detach().cpu().contiguous() for k, v in self.mean.items()}

    def load(self, tensors: dict[str, torch.Tensor], count: int, device: torch.device) -> None:
        """Restore the mean saved by `state_tensors` after `count` updates."""
        self.count = count
        self.mean = {
            k[len(self.PREFIX) :]: v.to(device)
            for k, v in tensors.items()
            if k.startswith(self.PREFIX)
        }
