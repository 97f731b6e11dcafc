"""Training a GAN: the step (D, then G) and the loop around it.

The step is the algorithm of the lecture notes, top to bottom:

1. Sample noise z ~ N(0, 1) and a batch of real digits x.
2. D step: make D say "real" on x (target 0.9: one-sided label smoothing) and
   "fake" on G(z) (target 0). G(z) is detached, so this step changes D only.
3. G step: make D say "real" on G(z). This is the non-saturating loss
   -log D(G(z)): its gradient is strong exactly when D confidently rejects the
   fakes, where the original minimax loss log(1 - D(G(z))) goes flat.
"""

import dataclasses
import json
import os
import signal
import time

import numpy as np
from tqdm import tqdm

from . import backend, data, models, nn, optim
from .autograd import no_grad
from .checkpoint import load_checkpoint, save_checkpoint
from .nn import functional as F
from .plots import plot_losses, save_grid
from .random import manual_seed
from .tensor import Tensor


@dataclasses.dataclass
class Config:
    model: str = "dcgan"
    epochs: int = 5
    batch_size: int = 64
    lr: float = 2e-4
    beta1: float = 0.5
    label_smoothing: float = 0.9  # D's target for real digits (1.0 turns smoothing off)
    seed: int = 0
    device: str = "cpu"
    data_dir: str = None
    out: str = None
    latent_dim: int = models.LATENT_DIM
    log_every: int = 10  # read loss values back from the device every N steps

    def validate(self):
        problems = []
        if self.model not in models.MODELS:
            problems.append(f"unknown model {self.model!r} (expected one of: {', '.join(models.MODELS)})")
        if not isinstance(self.epochs, int) or self.epochs < 1:
            problems.append(f"epochs must be a positive integer, got {self.epochs}")
        if not isinstance(self.batch_size, int) or self.batch_size < 2:
            problems.append(f"batch size must be an integer of at least 2 (batch norm needs 2), got {self.batch_size}")
        if not self.lr > 0:
            problems.append(f"learning rate must be positive, got {self.lr}")
        if not 0 < self.label_smoothing <= 1:
            problems.append(f"label smoothing target must be in (0, 1], got {self.label_smoothing}")
        if problems:
            raise ValueError("; ".join(problems))
        return self


class TrainingError(RuntimeError):
    pass


def _targets(value, n, like):
    return Tensor(backend.get_xp(like.data).full((n, 1), value, dtype=like.dtype))


def gan_step(G, D, opt_g, opt_d, real, z, real_target=0.9):
    """One D update and one G update; returns the step's statistics as tensors."""
    n = real.shape[0]
    # --- D step: maximise log D(x) + log(1 - D(G(z))) ---------------------------------
    fake = G(z)
    d_real = D(real)  # logits
    d_fake = D(fake.detach())  # detach: this loss must not reach G's weights
    loss_d = F.binary_cross_entropy_with_logits(d_real, _targets(real_target, n, d_real)) + \
        F.binary_cross_entropy_with_logits(d_fake, _targets(0.0, n, d_fake))
    opt_d.zero_grad()
    loss_d.backward()
    opt_d.step()
    # --- G step: minimise -log D(G(z)) (non-saturating) -------------------------------
    d_fake_for_g = D(fake)  # D has just changed: score the same fakes again
    loss_g = F.binary_cross_entropy_with_logits(d_fake_for_g, _targets(1.0, n, d_fake_for_g))
    opt_g.zero_grad()
    loss_g.backward()
    opt_g.step()
    with no_grad():
        return {
            "loss_d": loss_d, "loss_g": loss_g,
            "d_real": d_real.sigmoid().mean(), "d_fake": d_fake.sigmoid().mean(),
        }


class Trainer:
    """Everything a run needs, and everything a checkpoint must hold to resume it."""

    def __init__(self, config):
        self.config = cfg = config.validate()
        self.device = backend.resolve_device(cfg.device)
        manual_seed(cfg.seed)  # initial weights
        self.G, self.D = (m.to(self.device) for m in models.build(cfg.model))
        betas = (cfg.beta1, 0.999)
        self.opt_g = optim.Adam(self.G.parameters(), lr=cfg.lr, betas=betas)
        self.opt_d = optim.Adam(self.D.parameters(), lr=cfg.lr, betas=betas)
        images, labels = data.mnist(cfg.data_dir, split="all")
        self.loader = data.DataLoader((images, labels), cfg.batch_size, shuffle=True, seed=cfg.seed)
        self.noise = np.random.default_rng([cfg.seed, 1])  # z for training steps
        self.fixed_z = self._tensor(np.random.default_rng([cfg.seed, 2]).standard_normal((64, cfg.latent_dim)))
        self.step = 0
        self.history = []  # per-step statistics (floats), for the loss curve

    def _tensor(self, array):
        return Tensor(backend.to_device(np.asarray(array, dtype=np.float32), self.device))

    # --- checkpoints ---------------------------------------------------------------
    def state(self):
        arrays = {
            "G": self.G.state_dict(), "D": self.D.state_dict(),
            "opt_g": _optimizer_arrays(self.opt_g), "opt_d": _optimizer_arrays(self.opt_d),
        }
        meta = {
            "format": "minigan-gan-checkpoint-1",
            "config": dataclasses.asdict(self.config),
            "step": self.step,
            "loader": {k: int(v) for k, v in self.loader.state_dict().items()},
            "noise_rng": self.noise.bit_generator.state,
            "opt_g_steps": [s.get("step", 0) for s in self.opt_g.state],
            "opt_d_steps": [s.get("step", 0) for s in self.opt_d.state],
            "history": self.history,
        }
        return arrays, meta

    def save(self, path):
        save_checkpoint(path, *self.state())

    def load(self, path):
        arrays, meta = load_checkpoint(path)
        if meta.get("format") != "minigan-gan-checkpoint-1":
            raise TrainingError(f"{path!r} is not a GAN training checkpoint")
        if meta["config"]["model"] != self.config.model:
            raise TrainingError(
                f"{path!r} holds a {meta['config']['model']!r} model, but this run trains {self.config.model!r}"
            )
        for name, module in (("G", self.G), ("D", self.D)):
            try:
                module.load_state_dict(arrays.get(name, {}))
            except RuntimeError as e:
                raise TrainingError(f"{path!r} does not fit this model's {name}: {e}") from None
        _load_optimizer(self.opt_g, arrays.get("opt_g", {}), meta["opt_g_steps"])
        _load_optimizer(self.opt_d, arrays.get("opt_d", {}), meta["opt_d_steps"])
        self.loader.load_state_dict(meta["loader"])
        self.noise.bit_generator.state = meta["noise_rng"]
        self.step = meta["step"]
        self.history = meta["history"]

    # --- training ----------------------------------------------------------------
    def train_step(self, real):
        z = self._tensor(self.noise.standard_normal((real.shape[0], self.config.latent_dim)))
        stats = gan_step(self.G, self.D, self.opt_g, self.opt_d, self._tensor(real), z, self.config.label_smoothing)
        self.step += 1
        return stats

    def samples(self, z=None):
        """G's images for the fixed noise, in eval mode (batch norm on running statistics)."""
        self.G.eval()
        with no_grad():
            images = self.G(self.fixed_z if z is None else z).numpy()
        self.G.train()
        return images


def _optimizer_arrays(opt):
    return {str(i): {k: v for k, v in s.items() if not isinstance(v, int)} for i, s in enumerate(opt.state_dict()["state"])}


def _load_optimizer(opt, arrays, steps):
    states = [{**arrays.get(str(i), {}), **({"step": t} if t else {})} for i, t in enumerate(steps)]
    try:
        opt.load_state_dict({"defaults": opt.defaults, "state": states})
    except ValueError as e:
        raise TrainingError(f"the checkpoint's optimiser state does not fit: {e}") from None


class _StopRequest:
    """Ctrl-C sets a flag instead of killing the step; the loop saves and stops."""

    def __init__(self):
        self.requested = False

    def __enter__(self):
        self.previous = signal.signal(signal.SIGINT, self._handle)
        return self

    def _handle(self, signum, frame):
        self.requested = True

    def __exit__(self, *exc):
        signal.signal(signal.SIGINT, self.previous)


def _finite_or_raise(stats, step, checkpoint):
    for key in ("loss_d", "loss_g"):
        if not np.isfinite(stats[key]):
            raise TrainingError(
                f"{key} became {stats[key]} at step {step}; training stopped. "
                f"The last good checkpoint is {checkpoint if os.path.exists(checkpoint) else 'not written yet'}"
            )


def prepare_output(out, model):
    """Create the run folder (default runs/<model>-<timestamp>/), with a clear error."""
    out = out or os.path.join("runs", f"{model}-{time.strftime('%Y%m%d-%H%M%S')}")
    try:
        os.makedirs(out, exist_ok=True)
        probe = os.path.join(out, ".write-test")
        with open(probe, "w"):
            pass
        os.unlink(probe)
    except OSError as e:
        raise TrainingError(f"cannot write to the output folder {out!r}: {e.strerror}") from None
    return out


def train(config, resume=None, progress=True, max_steps=None):
    """Train, writing sample grids, the loss curve and a checkpoint to the run folder.

    ``max_steps`` stops early (the step count includes steps done before a resume);
    returns a dict with the paths written and the trainer.
    """
    trainer = Trainer(config)
    if resume:
        trainer.load(resume)
    out = prepare_output(config.out, config.model)
    checkpoint = os.path.join(out, "checkpoint.npz")
    with open(os.path.join(out, "config.json"), "w") as f:
        json.dump(dataclasses.asdict(config), f, indent=2)
    steps_per_epoch = len(trainer.loader)
    total = config.epochs * steps_per_epoch if max_steps is None else min(max_steps, config.epochs * steps_per_epoch)
    interrupted = False
    start = time.perf_counter()
    with _StopRequest() as stop, tqdm(total=total, initial=trainer.step, disable=not progress, unit="step") as bar:
        pending = []
        while trainer.step < total and not stop.requested:
            epoch = trainer.step // steps_per_epoch
            bar.set_description(f"epoch {epoch + 1}/{config.epochs}")
            for real, _ in trainer.loader:
                pending.append(trainer.train_step(real))
                if len(pending) == config.log_every or trainer.step == total or stop.requested:
                    # One read-back for several steps: on a GPU this is the only sync.
                    for stats in pending:
                        record = {k: float(v.item()) for k, v in stats.items()}
                        _finite_or_raise(record, trainer.step, checkpoint)
                        trainer.history.append(record)
                    pending = []
                    last = trainer.history[-1]
                    bar.set_postfix(loss_D=f"{last['loss_d']:.3f}", loss_G=f"{last['loss_g']:.3f}",
                                    D_x=f"{last['d_real']:.2f}", D_Gz=f"{last['d_fake']:.2f}")
                bar.update(1)
                if trainer.step >= total or stop.requested:
                    break
            if trainer.step % steps_per_epoch == 0 or trainer.step >= total:
                save_grid(trainer.samples(), os.path.join(out, f"samples_epoch{epoch + 1:03d}.png"),
                          title=f"epoch {epoch + 1}, step {trainer.step}")
        interrupted = stop.requested
    seconds = time.perf_counter() - start
    trainer.save(checkpoint)
    save_grid(trainer.samples(), os.path.join(out, "samples_final.png"))
    if trainer.history:
        plot_losses(trainer.history, os.path.join(out, "losses.png"))
    return {"out": out, "checkpoint": checkpoint, "trainer": trainer, "seconds": seconds, "interrupted": interrupted}
