"""Surrogate-gradient training of the backbone (BPTT through every token's timesteps).

AdamW with linear warmup and cosine decay; a regulariser keeps each site's firing
rate near `target_rate`; periodic checkpoints (the latest and the best on the
validation text, and with `average_tail` the mean of the weights over the run's last
steps) that resume exactly, optimizer and RNG included, without pickle.
The loop reports progress through a callback so the CLI decides how to show it.

Under torchrun the same loop runs data-parallel (`plastic.models.distributed`): every rank
draws the global batch and trains on its slice, DDP averages the gradients, rank 0 alone
evaluates and writes checkpoints, and time-based decisions (budget, evaluation, Ctrl-C)
are agreed by all ranks each step, so they never fall out of step.
"""

from __future__ import annotations

import json
import math
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from safetensors.torch import load_file, save_file

from plastic.errors import CheckpointError, ConfigError
from plastic.models import distributed
from plastic.models.checkpoint import load_model, save_model
from plastic.models.config import preset
from plastic.models.evaluate import bits_per_byte
from plastic.models.neurons import LIFPopulation
from plastic.models.spiking_lm import SpikingLM
from plastic.models.tokenizer import BOS
from plastic.models.weight_average import TailAverage

STATE_TENSORS = "train_state.safetensors"
STATE_JSON = "train_state.json"


@dataclass
class TrainConfig:
    data: str
    valid: str | None
    out: str
    preset: str = "tiny"
    minutes: float | None = None  # wall-clock budget (schedule follows elapsed time)
    steps: int | None = None  # or a step budget
    batch_size: int = 16
    seq_len: int = 256
    lr: float = 2e-3
    min_lr_ratio: float = 0.05
    warmup_steps: int = 200
    weight_decay: float = 0.05
    grad_clip: float = 1.0
    target_rate: float = 0.05  # firing-rate target per site (Nord: ~3%)
    rate_coef: float = 10.0  # weight of the squared rate error
    eval_every_s: float = 300.0
    valid_bytes: int = 50_000
    seed: int = 0
    device: str = "cpu"
    threads: int | None = None
    compile: bool = True  # torch.compile each LIF population (about 3x faster per population)
    grad_checkpointing: bool | None = None  # recompute each block in backward (None: on cuda)
    model_overrides: dict[str, Any] = field(default_factory=dict)
    init: str | None = None  # start from this checkpoint's weights (fresh optimizer and schedule)
    average_tail: float = 0.0  # keep the mean weights over this last fraction of the run (0: off)
    dropout: float = 0.0  # residual dropout while training (SpikingLM.residual_dropout)
    decay_lr_scale: float = 1.0  # the token-mixing decays' lr, as a multiple of --lr

    def validate(self) -> TrainConfig:
        if (self.minutes is None) == (self.steps is None):
            raise ConfigError("give exactly one of --minutes or --steps")
        if (self.minutes is not None and self.minutes <= 0) or (
            self.steps is not None and self.steps <= 0
        ):
            raise ConfigError("--minutes / --steps must be positive")
        if self.device not in ("cpu", "cuda"):
            raise ConfigError("--device must be cpu or cuda")
        if self.device == "cuda" and not torch.cuda.is_available():
            raise ConfigError("--device cuda: no CUDA device is available")
        for name, low in (("batch_size", 1), ("seq_len", 2), ("warmup_steps", 1)):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                raise ConfigError(f"--{name.replace('_', '-')} must be an integer >= {low}")
        if self.threads is not None and self.threads < 1:
            raise ConfigError("--threads must be >= 1")
        for name in ("eval_every_s", "grad_clip"):
            if not math.isfinite(getattr(self, name)) or getattr(self, name) <= 0:
                raise ConfigError(f"{_option(name)} must be a finite number > 0")
        if not (math.isfinite(self.lr) and self.lr >= 0):  # 0: checkpoints of the init weights
            raise ConfigError(f"{_option('lr')} must be a finite number >= 0")
        if not (math.isfinite(self.decay_lr_scale) and self.decay_lr_scale > 0):
            raise ConfigError("--decay-lr-scale must be a finite number > 0")
        if not 0.0 <= self.dropout < 1.0:  # NaN fails too
            raise ConfigError("--dropout must be at least 0 and below 1")
        for name in ("target_rate", "min_lr_ratio", "average_tail"):
            if not 0.0 <= getattr(self, name) <= 1.0:  # NaN fails too
                raise ConfigError(f"{_option(name)} must be between 0 and 1")
        if self.minutes is not None and not math.isfinite(self.minutes):
            raise ConfigError("--minutes must be finite")
        decay_max = self.model_overrides.get("decay_max")
        if decay_max is not None and not 0.0 < decay_max < 1.0:  # NaN fails too
            raise ConfigError("--decay-max must be above 0 and below 1")
        preset(self.preset, **self.model_overrides)  # an unknown preset or a bad override
        if Path(self.out).exists() and not Path(self.out).is_dir():
            raise ConfigError(f"--out {self.out} is a file; give a run directory")
        for what, path in (("training", self.data), ("validation", self.valid)):
            if path is not None:
                _check_text_file(path, what)
        return self


def _option(name: str) -> str:
    """The CLI option of a TrainConfig field."""
    return {"eval_every_s": "--eval-every"}.get(name, "--" + name.replace("_", "-"))


def _check_text_file(path: str | Path, what: str) -> None:
    p = Path(path)
    if p.is_dir():
        raise ConfigError(f"{what} file {path} is a directory; give a text file")
    if not p.is_file():
        raise ConfigError(f"{what} file not found: {path}")


def read_bytes(path: str | Path, what: str) -> bytes:
    p = Path(path)
    _check_text_file(p, what)
    try:
        data = p.read_bytes()
    except OSError as exc:
        raise ConfigError(f"{what} file {path}: {exc.strerror or exc}") from None
    if not data:
        raise ConfigError(f"{what} file is empty: {path}")
    return data


def lr_at(cfg: TrainConfig, step: int, progress: float) -> float:
    """Linear warmup over `warmup_steps`, then cosine from lr to lr * min_lr_ratio over progress."""
    if step < cfg.warmup_steps:
        return cfg.lr * (step + 1) / cfg.warmup_steps
    p = min(max(progress, 0.0), 1.0)
    return cfg.lr * (cfg.min_lr_ratio + (1 - cfg.min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * p)))


def rate_penalty(
    rates: dict[str, torch.Tensor],
    target: float,
    ctx: distributed.DistContext | None = None,
) -> torch.Tensor:
    """Mean squared distance of the sites' firing rates from `target`; under DDP the rates
    are those of the global batch (see `distributed.rate_penalty_term`)."""
    stacked = torch.stack(list(rates.values()))
    return distributed.rate_penalty_term(ctx or distributed.DistContext(), stacked, target)[0]


def sample_batch(data: torch.Tensor, cfg: TrainConfig, gen: torch.Generator):
    """Random windows: input <bos> + bytes[s : s+L-1], target bytes[s : s+L]."""
    starts = torch.randint(0, len(data) - cfg.seq_len, (cfg.batch_size,), generator=gen)
    idx = starts.unsqueeze(1) + torch.arange(cfg.seq_len).unsqueeze(0)
    tgt = data[idx].long()
    inp = torch.cat([torch.full((cfg.batch_size, 1), BOS, dtype=torch.long), tgt[:, :-1]], dim=1)
    return inp, tgt


def training_step(
    net: torch.nn.Module,
    opt: torch.optim.Optimizer,
    inp: torch.Tensor,
    tgt: torch.Tensor,
    cfg: TrainConfig,
    ctx: distributed.DistContext | None = None,
) -> tuple[torch.Tensor, Any]:
    """One optimizer step on (inp, tgt) - bf16 autocast on CUDA - returning this process's
    cross-entropy (nats) and the forward output; `plastic bench train` times exactly this."""
    if inp.device.type == "cuda":
        with torch.autocast("cuda", dtype=torch.bfloat16):
            out = net(inp)
    else:
        out = net(inp)
    ce = F.cross_entropy(out.logits.float().reshape(-1, out.logits.shape[-1]), tgt.reshape(-1))
    if ctx is not None and ctx.distributed:
        loss = ce + cfg.rate_coef * rate_penalty(out.rates, cfg.target_rate, ctx)
    else:
        loss = ce + cfg.rate_coef * rate_penalty(out.rates, cfg.target_rate)
    opt.zero_grad(set_to_none=True)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(net.parameters(), cfg.grad_clip)
    opt.step()
    return ce, out


def make_optimizer(model: SpikingLM, cfg: TrainConfig) -> torch.optim.AdamW:
    """AdamW with weight decay on the matrices (not the embedding, norms, betas, decays).

    With `decay_lr_scale` != 1 the token-mixing decays get a group of their own whose lr is
    that multiple of the run's (`lr_scale`): Adam moves a parameter by about lr per step, so
    a fine-tuning lr leaves a head's memory length where it was (see lr_of_group).
    """
    decay, no_decay, mixing_decays = [], [], []
    for name, p in model.named_parameters():
        if cfg.decay_lr_scale != 1.0 and name.endswith("mix.decay_logit"):
            mixing_decays.append(p)
        else:
            (decay if p.ndim >= 2 and "embed" not in name else no_decay).append(p)
    groups = [
        {"params": decay, "weight_decay": cfg.weight_decay},
        {"params": no_decay, "weight_decay": 0.0},
    ]
    if mixing_decays:
        groups.append(
            {"params": mixing_decays, "weight_decay": 0.0, "lr_scale": cfg.decay_lr_scale}
        )
    return torch.optim.AdamW(groups, lr=cfg.lr, betas=(0.9, 0.98))


def lr_of_group(group: dict, lr: float) -> float:
    """A parameter group's lr when the schedule is at `lr` (its `lr_scale` times it)."""
    return lr * group.get("lr_scale", 1.0)


def _save_train_state(
    out: Path, opt: torch.optim.Optimizer, gen: torch.Generator, meta: dict, average: TailAverage
) -> None:
    sd = opt.state_dict()
    tensors: dict[str, torch.Tensor] = {
        "rng.torch": torch.get_rng_state(),
        "rng.data": gen.get_state(),
        **average.state_tensors(),
    }
    for pid, st in sd["state"].items():
        for key, val in st.items():
            tensors[f"opt.{pid}.{key}"] = torch.as_tensor(val).detach().cpu().contiguous()
    tmp = out / (STATE_TENSORS + ".tmp")
    save_file(tensors, str(tmp))
    tmp.replace(out / STATE_TENSORS)
    doc = dict(meta, param_groups=sd["param_groups"])  # meta["averaged_steps"]: average.count
    tmp = out / (STATE_JSON + ".tmp")
    tmp.write_text(json.dumps(doc, indent=2) + "\n")
    tmp.replace(out / STATE_JSON)


def _load_train_state(
    out: Path, opt: torch.optim.Optimizer, gen: torch.Generator, average: TailAverage
) -> dict:
    try:
        doc = json.loads((out / STATE_JSON).read_text())
        tensors = load_file(str(out / STATE_TENSORS))
    except (OSError, ValueError) as exc:
        raise CheckpointError(f"{out}: cannot resume, training state unreadable ({exc})") from None
    state: dict[int, dict[str, torch.Tensor]] = {}
    for name, val in tensors.items():
        if name.startswith("opt."):
            _, pid, key = name.split(".", 2)
            state.setdefault(int(pid), {})[key] = val
    opt.load_state_dict({"state": state, "param_groups": doc.pop("param_groups")})
    torch.set_rng_state(tensors["rng.torch"])
    gen.set_state(tensors["rng.data"])
    device = next(iter(opt.param_groups[0]["params"])).device
    average.load(tensors, doc.get("averaged_steps", 0), device)
    return doc


class _StepBoundaryInterrupt:
    """Defers Ctrl-C to the next step boundary (in the main thread): a KeyboardInterrupt
    raised mid-step would leave the data RNG, optimizer and step counter out of step, so
    `--resume` would not continue exactly. A second Ctrl-C interrupts at once."""

    def __init__(self) -> None:
        import signal
        import threading

        self.requested = False
        self._previous: Any = None
        if threading.current_thread() is threading.main_thread():
            self._previous = signal.signal(signal.SIGINT, self._on_sigint)

    def _on_sigint(self, signum: int, frame: Any) -> None:
        if self.requested:
            self.restore()
            raise KeyboardInterrupt
        self.requested = True
        sys.stderr.write("interrupt: finishing this step, then saving (Ctrl-C again: stop now)\n")

    def check(self) -> None:
        if self.requested:
            raise KeyboardInterrupt

    def restore(self) -> None:
        import signal

        if self._previous is not None:
            signal.signal(signal.SIGINT, self._previous)
            self._previous = None


def init_from_checkpoint(cfg: TrainConfig) -> tuple[SpikingLM, str]:
    """The model a new run starts from with `--init DIR`, and that checkpoint's content hash.

    The checkpoint must have exactly the shape the run asks for (preset + overrides): a
    mismatch is one ConfigError line naming the fields that differ.
    """
    model = load_model(cfg.init, verify=True)
    want = preset(cfg.preset, **cfg.model_overrides).to_dict()
    have = model.config.to_dict()
    diff = [f"{k} {have.get(k)!r} != {want[k]!r}" for k in want if have.get(k) != want[k]]
    if diff:
        raise ConfigError(
            f"--init {cfg.init}: checkpoint does not match --preset {cfg.preset} "
            f"(checkpoint vs run: {'; '.join(diff)})"
        )
    return model, model.content_hash


def compile_populations(model: SpikingLM) -> None:
    """torch.compile every LIF population in place.

    Fusing each population's timestep loop is where the time goes (whole-model
    compilation measured slower on CPU); instances of one size share a compiled graph.
    """
    for module in model.modules():
        if isinstance(module, LIFPopulation):
            module.compile()


def train(cfg: TrainConfig, on_event: Callable[[dict], None] = lambda e: None) -> dict:
    """Train (or resume, if `cfg.out` holds a run) and return the final metrics.

    Started by torchrun with several processes, trains data-parallel (module docstring)."""
    cfg.validate()
    ctx, device = distributed.init(cfg.device)
    try:
        distributed.check_batch(ctx, cfg.batch_size)
        return _train(cfg, ctx, device, on_event if ctx.is_main else lambda e: None)
    finally:
        distributed.shutdown(ctx)


def _train(
    cfg: TrainConfig,
    ctx: distributed.DistContext,
    device: torch.device,
    on_event: Callable[[dict], None],
) -> dict:
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    train_data = torch.frombuffer(bytearray(read_bytes(cfg.data, "training")), dtype=torch.uint8)
    if len(train_data) <= cfg.seq_len + 1:
        raise ConfigError(f"training file is shorter than one sequence ({cfg.seq_len} bytes)")
    valid = read_bytes(cfg.valid, "validation")[: cfg.valid_bytes] if cfg.valid else None
    out = Path(cfg.out)
    last_dir, best_dir, average_dir = out / "last", out / "best", out / "average"
    resuming = (last_dir / "config.json").is_file() and (out / STATE_JSON).is_file()

    torch.manual_seed(cfg.seed)
    gen = torch.Generator().manual_seed(cfg.seed)
    init_hash = None
    if resuming:
        model = load_model(last_dir, verify=True)
        model.train()
    elif cfg.init is not None:
        model, init_hash = init_from_checkpoint(cfg)
        model.train()
    else:
        model = SpikingLM(preset(cfg.preset, **cfg.model_overrides))
    model.to(device)
    model.residual_dropout = cfg.dropout
    checkpointing = cfg.grad_checkpointing
    model.gradient_checkpointing = cfg.device == "cuda" if checkpointing is None else checkpointing
    if cfg.compile:
        compile_populations(model)
    net = distributed.wrap(model, ctx, device)  # what the steps call (DDP when distributed)
    opt = make_optimizer(model, cfg)
    meta = {"step": 0, "elapsed_s": 0.0, "tokens": 0, "best_valid_bpb": None}
    average = TailAverage(cfg.average_tail)
    if init_hash is not None:
        meta["init_content_hash"] = init_hash
    if resuming:
        meta.update(_load_train_state(out, opt, gen, average))
        for k in ("param_groups",):
            meta.pop(k, None)
    if ctx.is_main:
        out.mkdir(parents=True, exist_ok=True)
    log = (out / "train_log.jsonl").open("a") if ctx.is_main else None
    on_event(
        {
            "event": "start",
            "resumed": resuming,
            "parameters": model.num_parameters(),
            "processes": ctx.world_size,
            **meta,
        }
    )

    def progress_frac() -> float:
        if cfg.steps is not None:
            return meta["step"] / cfg.steps
        return meta["elapsed_s"] / (cfg.minutes * 60)

    def checkpoint(valid_bpb: float | None) -> None:
        if ctx.is_main:
            _checkpoint(valid_bpb)
        distributed.barrier(ctx)  # every rank leaves with the checkpoint on disk

    def _checkpoint(valid_bpb: float | None) -> None:
        info = {"train_config": asdict(cfg), "step": meta["step"], "tokens": meta["tokens"]}
        if "init_content_hash" in meta:
            info["init_content_hash"] = meta["init_content_hash"]
        save_model(model, last_dir, meta=dict(info, valid_bpb=valid_bpb))
        if valid_bpb is not None and (
            meta["best_valid_bpb"] is None or valid_bpb < meta["best_valid_bpb"]
        ):
            meta["best_valid_bpb"] = valid_bpb
            save_model(model, best_dir, meta=dict(info, valid_bpb=valid_bpb))
        if average.count:  # scored whenever the run is (not on a Ctrl-C)
            averaged = average.averaged_model(model)
            score = bits_per_byte(averaged, valid) if valid and valid_bpb is not None else None
            meta["average_valid_bpb"] = score
            meta["averaged_steps"] = average.count
            save_model(
                averaged,
                average_dir,
                meta=dict(info, valid_bpb=score, averaged_steps=average.count),
            )
        _save_train_state(out, opt, gen, dict(meta), average)

    def evaluate() -> float | None:
        if valid is None or not ctx.is_main:
            return None
        model.eval()
        bpb = bits_per_byte(model, valid)
        model.train()
        return bpb

    model.train()
    last_eval = time.monotonic()
    t_prev = time.monotonic()
    ema_loss = None
    valid_bpb = None
    stop = _StepBoundaryInterrupt()
    try:
        while progress_frac() < 1.0:
            stop.check()  # a Ctrl-C lands here, between whole steps: the state is consistent
            inp, tgt = sample_batch(train_data, cfg, gen)  # the global batch, on every rank
            tokens = inp.numel()
            inp, tgt = distributed.shard(ctx, inp.to(device), tgt.to(device))
            lr = lr_at(cfg, meta["step"], progress_frac())
            for group in opt.param_groups:
                group["lr"] = lr_of_group(group, lr)
            ce, out_ = training_step(net, opt, inp, tgt, cfg, ctx)
            now = time.monotonic()
            # all ranks agree on the time spent, on evaluating and on stopping (the slowest
            # rank's clock; a Ctrl-C that reached any rank)
            agreed = distributed.max_over_ranks(
                ctx,
                torch.tensor(
                    [now - t_prev, float(now - last_eval >= cfg.eval_every_s), stop.requested],
                    dtype=torch.float64,
                ),
            )
            meta["elapsed_s"] += float(agreed[0])
            stop.requested = bool(agreed[2])
            t_prev = now
            meta["step"] += 1
            meta["tokens"] += tokens
            if average.covers(progress_frac()):
                average.update(model)
            bpb = float(distributed.mean_over_ranks(ctx, ce)) / math.log(2)
            meta["last_train_bpb"] = bpb  # this step's loss on the global batch (no average)
            ema_loss = bpb if ema_loss is None else 0.98 * ema_loss + 0.02 * bpb
            rates = torch.stack([r.detach() for r in out_.rates.values()])
            rate = float(distributed.mean_over_ranks(ctx, rates).mean())
            event = {
                "event": "step",
                "step": meta["step"],
                "progress": progress_frac(),
                "train_bpb": ema_loss,
                "sparsity": 1.0 - rate,
                "tokens_per_s": meta["tokens"] / max(meta["elapsed_s"], 1e-9),
                "lr": opt.param_groups[0]["lr"],
                "valid_bpb": valid_bpb,
            }
            on_event(event)
            if agreed[1]:
                valid_bpb = evaluate()
                checkpoint(valid_bpb)
                last_eval = time.monotonic()
                t_prev = last_eval  # evaluation time does not count against the budget
                event.update(event="eval", valid_bpb=valid_bpb)
                if log is not None:
                    log.write(json.dumps(event) + "\n")
                    log.flush()
                on_event(event)
    except KeyboardInterrupt:
        stop.restore()
        if stop.requested:  # stopped at a step boundary: saved state resumes bit-exactly
            checkpoint(None)
            on_event({"event": "interrupted", **meta})
        else:  # a second Ctrl-C mid-step: the last periodic checkpoint stays as it was
            on_event({"event": "aborted", **meta})
        if log is not None:
            log.close()
        raise
    stop.restore()
    on_event({"event": "finishing", "validating": valid is not None, **meta})
    valid_bpb = evaluate()
    checkpoint(valid_bpb)
    final = {"event": "done", "valid_bpb": valid_bpb, **meta}
    if log is not None:
        log.write(json.dumps(final) + "\n")
        log.close()
    on_event(final)
    return final
