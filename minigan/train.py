"""Training a GAN: the step (D, then G) and the loop around it.

The step is the algorithm of the lecture notes, top to bottom:

1. Sample noise z ~ N(0, 1) and a batch of real digits x (and, for a conditional
   GAN, their classes y: G(z, y) then draws a digit of class y).
2. D step: make D say "real" on x (target 0.9: one-sided label smoothing) and
   "fake" on G(z) (target 0). G(z) is detached, so this step changes D only.
3. G step: make D say "real" on G(z). This is the non-saturating loss
   -log D(G(z)): its gradient is strong exactly when D confidently rejects the
   fakes, where the original minimax loss log(1 - D(G(z))) goes flat.

The loss (minimax, non-saturating or WGAN-GP) is an object of ``minigan.losses``.
D can also be trained ahead of G: ``d_warmup`` D steps before G's first step,
then ``d_steps`` D steps for each G step (WGAN-GP's n_critic = 5).
"""

import copy
import dataclasses
import itertools
import json
import math
import os
import signal
import sys
import threading
import time

import numpy as np
from tqdm import tqdm

from . import backend, dashboard, data, losses, metrics, models, optim
from .autograd import no_grad
from .checkpoint import CheckpointError, flatten, load_checkpoint, save_checkpoint
from .plots import plot_losses, save_grid
from .random import get_rng_state, manual_seed, set_rng_state
from .tensor import Tensor


def _is_count(value):
    """A Python int, as a setting must be to go into a checkpoint's JSON: not a bool
    (True would pass as 1), nor a NumPy integer (JSON cannot write one)."""
    return isinstance(value, int) and not isinstance(value, bool)


@dataclasses.dataclass
class Config:
    model: str = "dcgan"
    epochs: int = 25
    batch_size: int = 64
    lr: float = 2e-4
    beta1: float = 0.5
    label_smoothing: float = 0.9  # D's target for real digits (1.0 turns smoothing off)
    loss: str = "nonsaturating"  # minimax, nonsaturating or wgan-gp (minigan.losses)
    d_steps: int = 1  # D steps per G step (n_critic)
    d_warmup: int = 0  # D steps before G's first step
    conditional: bool = False  # G(z, y) and D(x, y) get the digit's class y
    d_depth: int = 2  # the DCGAN D's strided convolutions: 2 (the DCGAN's) or 3 (models.dcgan_discriminator)
    g_depth: int = 2  # the DCGAN G's convolutions: 2 (the DCGAN's) or 4 (models.dcgan_generator)
    ema: float = 0.0  # samples and metrics from a moving average of G's weights with this decay (0: from G)
    beta2: float = 0.999
    gp_weight: float = 10.0  # λ of the WGAN-GP gradient penalty
    metrics: bool = True  # classifier-FID, score and coverage every epoch (minigan.metrics)
    report_every: int = 1  # samples, metrics and dashboard every N epochs (and after the last)
    seed: int = 0
    device: str = "cpu"
    data_dir: str = None
    out: str = None
    latent_dim: int = models.LATENT_DIM
    log_every: int = 10  # read loss values back from the device every N steps
    limit: int = None  # train on this many digits only (a quick run); None: all of them

    def validate(self):
        # A setting that is not a number at all (a string from a script, a hand-edited
        # checkpoint) is named first: the range checks below would fail on it with a TypeError.
        not_numbers = [f"{name.replace('_', ' ')} must be a number, got {getattr(self, name)!r}"
                       for name in ("lr", "beta1", "beta2", "label_smoothing", "ema", "gp_weight")
                       if not backend.is_number(getattr(self, name))]
        if not_numbers:
            raise ConfigError("; ".join(not_numbers))
        problems = []
        minimum_limit = self.batch_size if isinstance(self.batch_size, int) else 2  # (a bad one is named below)
        if not isinstance(self.model, str) or self.model not in models.MODELS:  # (a list is no dict key)
            problems.append(f"unknown model {self.model!r} (expected one of: {', '.join(models.MODELS)})")
        for name, minimum, what in (
            ("epochs", 1, "a positive integer"),
            ("batch_size", 2, "an integer of at least 2 (batch norm needs 2)"),
            ("seed", 0, "a non-negative integer"),
            ("latent_dim", 1, "a positive integer"),
            ("log_every", 1, "a positive integer"),
            ("report_every", 1, "a positive integer"),
        ):
            value = getattr(self, name)
            if not _is_count(value) or value < minimum:
                problems.append(f"{name.replace('_', ' ')} must be {what}, got {value}")
        if self.limit is not None and (not _is_count(self.limit) or self.limit < minimum_limit):
            problems.append(f"limit must be at least the batch size ({self.batch_size}), got {self.limit}")
        if not self.lr > 0:
            problems.append(f"learning rate must be positive, got {self.lr}")
        elif not math.isfinite(self.lr):
            problems.append(f"learning rate must be finite, got {self.lr}")
        if not 0 <= self.beta1 < 1:
            problems.append(f"beta1 must be in [0, 1), got {self.beta1}")
        if not 0 < self.label_smoothing <= 1:
            problems.append(f"label smoothing target must be in (0, 1], got {self.label_smoothing}")
        for name, choices in (("d_depth", models.D_DEPTHS), ("g_depth", models.G_DEPTHS)):
            value, what = getattr(self, name), name.replace("_", " ")
            if value not in choices:
                problems.append(f"{what} must be {' or '.join(map(str, choices))}, got {value}")
            elif value != 2 and self.model != "dcgan":
                problems.append(f"{what} applies to the dcgan only (the {self.model} has no convolutions)")
        if not isinstance(self.loss, str) or self.loss not in losses.LOSSES:
            problems.append(f"unknown loss {self.loss!r} (expected one of: {', '.join(losses.LOSSES)})")
        if self.loss == "wgan-gp" and self.label_smoothing != 1:
            problems.append("label smoothing does not apply to wgan-gp (the critic has no targets): use 1.0")
        if not 0 <= self.beta2 < 1:
            problems.append(f"beta2 must be in [0, 1), got {self.beta2}")
        if not 0 <= self.ema < 1:
            problems.append(f"ema decay must be in [0, 1), got {self.ema}")
        if not 0 <= self.gp_weight < math.inf:
            problems.append(f"gp weight must be 0 or more, and finite, got {self.gp_weight}")
        for name in ("conditional", "metrics"):  # ("no" from a hand-edited checkpoint would count as true)
            if not isinstance(getattr(self, name), bool):
                problems.append(f"{name} must be true or false, got {getattr(self, name)!r}")
        for name, minimum in (("d_steps", 1), ("d_warmup", 0)):
            value = getattr(self, name)
            if not _is_count(value) or value < minimum:
                problems.append(f"{name.replace('_', ' ')} must be an integer of at least {minimum}, got {value}")
        try:
            backend.resolve_device(self.device)
        except (ValueError, RuntimeError) as e:
            problems.append(str(e))
        if problems:
            raise ConfigError("; ".join(problems))
        return self


# What a resumed run must share with the run it continues, for the result to be the
# same as one run straight through. The rest (epochs, device, folders, logging) may change.
RUN_FIELDS = ("model", "batch_size", "lr", "beta1", "beta2", "label_smoothing", "seed", "latent_dim", "limit",
              "loss", "d_steps", "d_warmup", "conditional", "d_depth", "g_depth", "ema", "gp_weight", "report_every")
# The WGAN-GP paper's settings, where they differ from Config's (DCGAN) defaults.
WGAN_GP_SETTINGS = {"lr": 1e-4, "beta1": 0.0, "beta2": 0.9, "d_steps": 5, "label_smoothing": 1.0}
# The example's DCGAN run, where it differs from Config's defaults (the DCGAN of the
# lecture notes, which stalls at a classifier score near 6.4): a deeper G and D, a
# larger learning rate, smaller batches, samples from the average of G's recent
# weights, and 20 epochs so that it ends within ten minutes on a 2-core CPU
# (docs/results.md shows what each change does).
DCGAN_RUN_SETTINGS = {"d_depth": 3, "g_depth": 4, "lr": 1e-3, "batch_size": 32, "ema": 0.99, "epochs": 20}
FORMAT = "minigan-gan-checkpoint-2"
CHECKPOINT = "checkpoint.npz"  # its name in the run folder
# What Trainer.load reads from a checkpoint's metadata (epoch_metrics may be missing).
META_FIELDS = ("config", "step", "loader", "noise_rng", "rng", "opt_g_steps", "opt_d_steps", "history")
STEP_STATS = ("loss_d", "loss_g", "d_real", "d_fake")  # what gan_step returns, one entry of Trainer.history
ADAM_MOMENTS = ("exp_avg", "exp_avg_sq")  # Adam's arrays for every parameter that has taken a step


class ConfigError(ValueError):
    """A setting of the run is out of range."""


class TrainingError(RuntimeError):
    """Training cannot start or go on (a checkpoint that does not fit, a NaN loss, ...)."""


def gan_step(G, D, opt_g, opt_d, real, z, loss=losses.NonSaturating(0.9), labels=None, update_g=True):
    """One D update and (if ``update_g``) one G update; returns the step's statistics
    as tensors. ``loss`` is one of minigan.losses; ``labels`` the classes of a
    conditional GAN (its fakes get the same classes as the real batch)."""
    cond = () if labels is None else (labels,)  # the extra input of G(z, y) and D(x, y)
    # --- D step: tell x from G(z) ----------------------------------------------------
    fake = G(z, *cond)
    # detach: this loss must not reach G's weights
    loss_d, d_real, d_fake = loss.d_loss(D, real, fake.detach(), cond)
    opt_d.zero_grad()
    loss_d.backward()
    opt_d.step()
    # --- G step: fool D (D has just changed: score the same fakes again) ----------------
    if update_g:
        # The gradient reaches G's weights through D, but D's own weight gradients
        # would be thrown away (D's next step starts from zero_grad): skip them, and
        # give each of D's parameters its own setting back (a frozen one stays frozen).
        trainable = [p.requires_grad for p in D.parameters()]
        D.requires_grad_(False)
        try:
            loss_g = loss.g_loss(D(fake, *cond))
            opt_g.zero_grad()
            loss_g.backward()
        finally:
            for p, setting in zip(D.parameters(), trainable):
                p.requires_grad_(setting)
        opt_g.step()
    with no_grad():
        if not update_g:  # G waits (warm-up, or D's extra steps): its loss is only shown
            loss_g = loss.g_loss(D(fake.detach(), *cond))
        return {
            "loss_d": loss_d, "loss_g": loss_g,
            "d_real": loss.d_value(d_real).mean(), "d_fake": loss.d_value(d_fake).mean(),
        }


class Trainer:
    """Everything a run needs, and everything a checkpoint must hold to resume it."""

    def __init__(self, config):
        self.config = cfg = config.validate()
        self.device = backend.resolve_device(cfg.device)
        manual_seed(cfg.seed)  # initial weights
        built = models.build(cfg.model, cfg.conditional, critic=cfg.loss == "wgan-gp",
                             d_depth=cfg.d_depth, g_depth=cfg.g_depth, latent_dim=cfg.latent_dim)
        self.G, self.D = (m.to(self.device) for m in built)
        betas = (cfg.beta1, cfg.beta2)
        self.opt_g = optim.Adam(self.G.parameters(), lr=cfg.lr, betas=betas)
        self.opt_d = optim.Adam(self.D.parameters(), lr=cfg.lr, betas=betas)
        # G's weights (and batch-norm statistics) averaged over its recent steps, when
        # cfg.ema is set: samples and metrics then come from the average. G's iterates
        # jitter around where the game is heading, and their average draws cleaner digits.
        self.G_ema = copy.deepcopy(self.G).eval().requires_grad_(False) if cfg.ema else None
        images, labels = data.mnist(cfg.data_dir, split="all")
        if cfg.limit is not None:
            if cfg.limit > len(images):
                raise ConfigError(f"limit {cfg.limit} is more than the {len(images)} digits there are")
            # Digits spread evenly over the whole set, not the first ones: the bundled file
            # is sorted by class, so this keeps every class's share.
            keep = np.linspace(0, len(images), cfg.limit, endpoint=False).astype(int)
            images, labels = images[keep], labels[keep]
        if cfg.batch_size > len(images):
            raise ConfigError(f"batch size {cfg.batch_size} is more than the {len(images)} digits there are")
        # Batches of (images, labels) for a conditional GAN; of (images,) for the others.
        arrays = (images, labels) if cfg.conditional else (images,)
        self.loader = data.DataLoader(arrays, cfg.batch_size, shuffle=True, seed=cfg.seed)
        self.noise = np.random.default_rng([cfg.seed, 1])  # z for training steps (and WGAN-GP's ε)
        self.loss = losses.make(cfg.loss, cfg.label_smoothing, cfg.gp_weight, generator=self.noise)
        fixed = np.random.default_rng([cfg.seed, 2])
        if cfg.conditional:  # one row per digit 0-9, the same 8 noise vectors in every row
            self.fixed_z = self._tensor(np.tile(fixed.standard_normal((8, cfg.latent_dim)), (10, 1)))
            self.fixed_labels = np.repeat(np.arange(10), 8)
        else:
            self.fixed_z, self.fixed_labels = self._tensor(fixed.standard_normal((64, cfg.latent_dim))), None
        # The metrics' classifier is loaded by train() before the first step (it may have to
        # be trained first); the Evaluator, which reads the real digits, at the first epoch's end.
        self._classifier = self._evaluator = None
        # 1,000 samples scored at every epoch's end: the same z each time (and 100 of each class)
        self.eval_noise = (np.random.default_rng([cfg.seed, 3]).standard_normal((1000, cfg.latent_dim)),
                           np.arange(1000) % 10 if cfg.conditional else None)
        self.step = 0
        self.history = []  # per-step statistics (floats), for the loss curve
        self.epoch_metrics = []  # one record per epoch (minigan.dashboard)
        self.timeline = {}  # epoch -> the first fixed-noise samples, for the timeline strip
        self.saved = None  # (path, step) of the last checkpoint written or loaded

    @property
    def evaluator(self):
        """The metrics' Evaluator, or None when the run computes no metrics."""
        if self.config.metrics and self._evaluator is None:
            self._evaluator = metrics.Evaluator(self.classifier())
        return self._evaluator

    def classifier(self, progress=True):
        """The metrics' classifier: from the cache, or trained (a minute or so) and cached."""
        if self._classifier is None:
            self._classifier = metrics.load_classifier(device=self.device, progress=progress)
        return self._classifier

    def _tensor(self, array):
        return Tensor(backend.to_device(np.asarray(array, dtype=np.float32), self.device))

    # --- checkpoints ---------------------------------------------------------------
    def state(self):
        """(arrays, meta): the weights and Adam moments as arrays; counters, random
        generator states, the configuration and the loss history as JSON."""
        arrays = {
            "G": self.G.state_dict(), "D": self.D.state_dict(),  # batch norm statistics too
            **({} if self.G_ema is None else {"G_ema": self.G_ema.state_dict()}),
            "opt_g": _optimizer_arrays(self.opt_g), "opt_d": _optimizer_arrays(self.opt_d),
            "timeline": {str(epoch): images for epoch, images in self.timeline.items()},
        }
        meta = {
            "format": FORMAT,
            "config": dataclasses.asdict(self.config),
            "step": self.step,
            "epoch": self.step // len(self.loader),  # epochs completed
            "loader": {k: int(v) for k, v in self.loader.state_dict().items()},
            "noise_rng": self.noise.bit_generator.state,
            "rng": get_rng_state(),  # minigan's default generator (dropout, initialisers)
            "opt_g_steps": [s.get("step", 0) for s in self.opt_g.state],
            "opt_d_steps": [s.get("step", 0) for s in self.opt_d.state],
            "history": self.history,
            "epoch_metrics": self.epoch_metrics,
        }
        return arrays, meta

    def save(self, path):
        """Write a checkpoint atomically; refuse to write one holding NaN or infinity,
        so that every checkpoint on disk is one training can go on from."""
        arrays, meta = self.state()
        bad = [name for name, a in flatten(arrays).items() if not np.isfinite(a).all()]
        if bad:
            raise TrainingError(
                f"after step {self.step}, {', '.join(bad[:3])}{' and more' if len(bad) > 3 else ''} "
                f"hold NaN or infinity; training stopped. {self.last_good()}"
            )
        save_checkpoint(path, arrays, meta)
        self.saved = (path, self.step)

    def last_good(self):
        if self.saved is None:
            return "No checkpoint was saved before this."
        return f"The last good checkpoint is {self.saved[0]} (step {self.saved[1]})."

    def load(self, path):
        """Continue from a checkpoint of the same run (the same RUN_FIELDS)."""
        arrays, meta = read_checkpoint(path)
        if problem := _changed_run_field(path, meta["config"], self.config):
            raise TrainingError(problem)
        nets = (("G", self.G), ("D", self.D)) + (() if self.G_ema is None else (("G_ema", self.G_ema),))
        for name, module in nets:
            try:
                module.load_state_dict(arrays.get(name, {}))
            except RuntimeError as e:
                raise TrainingError(f"{path!r} does not fit this model's {name}: {e}") from None
        for name, opt in (("opt_g", self.opt_g), ("opt_d", self.opt_d)):
            _load_optimizer(opt, arrays.get(name, {}), meta[f"{name}_steps"], path, name)
        try:
            self.loader.load_state_dict(meta["loader"])
        except ValueError as e:
            raise TrainingError(f"{path!r} was trained on other data: {e}; the same files in another folder are fine "
                                "(data_dir may change), other digits are not") from None
        self.noise.bit_generator.state = meta["noise_rng"]
        set_rng_state(meta["rng"])
        self.step = meta["step"]
        self.history = meta["history"]
        self.epoch_metrics = meta.get("epoch_metrics", [])
        self.timeline = {int(epoch): images for epoch, images in arrays.get("timeline", {}).items()}
        self.saved = (path, self.step)

    # --- training ----------------------------------------------------------------
    def train_step(self, real, labels=None):
        cfg = self.config
        z = self._tensor(self.noise.standard_normal((real.shape[0], cfg.latent_dim)))
        d_steps_done = self.step + 1 - cfg.d_warmup  # D steps after the warm-up, this one included
        update_g = d_steps_done > 0 and d_steps_done % cfg.d_steps == 0
        stats = gan_step(self.G, self.D, self.opt_g, self.opt_d, self._tensor(real), z, self.loss, labels, update_g)
        if update_g and self.G_ema is not None:
            self._update_average(g_steps=d_steps_done // cfg.d_steps)
        self.step += 1
        return stats

    def _update_average(self, g_steps):
        """average ← d·average + (1 - d)·G, for every weight and statistic of G: an
        exponential moving average over roughly the last 1/(1 - d) G steps.

        Early on it would mostly remember G's random initial weights, so the decay
        ramps up as (1 + t)/(10 + t) over G's first t steps (as TensorFlow's
        ExponentialMovingAverage does) until it reaches cfg.ema."""
        d = min(self.config.ema, (1 + g_steps) / (10 + g_steps))
        for (_, avg), (_, now) in zip(self.G_ema.named_tensors(), self.G.named_tensors()):
            if avg.dtype.kind == "f":
                avg.data *= d
                avg.data += (1 - d) * now.data
            else:  # a count (batch norm's num_batches_tracked) is copied, not averaged
                avg.data[...] = now.data
            avg.changed_in_place()

    def record(self, pending):
        """Read back the statistics of the steps in ``pending`` [(step, stats), ...]
        into the history, stopping at the first step whose loss is NaN or infinite."""
        for step, stats in pending:
            values = {k: float(v.item()) for k, v in stats.items()}
            for key in ("loss_d", "loss_g"):
                if not math.isfinite(values[key]):
                    raise TrainingError(f"{key} became {values[key]} at step {step}; training stopped. {self.last_good()}")
            self.history.append(values)
        pending.clear()

    def row_labels(self):
        """The digit of each row of the sample grids (eight samples of each class), or
        None when G is not conditional."""
        return None if self.fixed_labels is None else self.fixed_labels[::8]

    def samples(self, z=None, labels=None):
        """G's images (or its average's, with cfg.ema) for noise z (an array; default:
        the fixed noise and labels), in eval mode (batch norm on running statistics)."""
        z, labels = (self.fixed_z, self.fixed_labels) if z is None else (self._tensor(z), labels)
        cond = () if labels is None else (labels,)
        net = self.G if self.G_ema is None else self.G_ema
        net.eval()
        with no_grad():
            images = net(z, *cond).numpy()
        self.G.train()  # G trains on; the average is only ever evaluated
        return images


def read_checkpoint(path):
    """(arrays, meta) of a GAN training checkpoint; a CheckpointError for any other file,
    or for one whose metadata lacks a field or holds settings Config does not know. A
    run folder is refused too, with the path of the checkpoint it holds."""
    inside = os.path.join(path, CHECKPOINT)
    if os.path.isdir(path) and os.path.isfile(inside):  # (--resume runs/dcgan-.../)
        raise IsADirectoryError(f"{os.fspath(path)!r} is a run folder: resume from its checkpoint, {inside!r}")
    arrays, meta = load_checkpoint(path)
    if meta.get("format") != FORMAT:
        raise CheckpointError(f"{path!r} is not a GAN training checkpoint of this minigan (format {meta.get('format')!r})")
    missing = [field for field in META_FIELDS if field not in meta]
    if missing:
        raise CheckpointError(f"{path!r} is damaged: its metadata has no {', '.join(missing)}")
    wrong = _wrong_meta_types(meta) + [
        f"its timeline has an entry {key!r}, not an epoch number" for key in arrays.get("timeline", {}) if not key.isdigit()
    ]
    if wrong:  # a hand edit: named here, not failing later deep inside the run
        raise CheckpointError(f"{path!r} is damaged: {'; '.join(wrong)}")
    unknown = sorted(set(meta["config"]) - {field.name for field in dataclasses.fields(Config)})
    if unknown:
        raise CheckpointError(f"{path!r} has settings this minigan does not know: {', '.join(unknown)} "
                              "(was it written by a newer minigan?)")
    return arrays, meta


def _wrong_meta_types(meta):
    """What in a checkpoint's metadata is not of the type Trainer.state writes."""
    def count(v):
        return backend.is_int(v) and v >= 0

    def counts(v):
        return isinstance(v, list) and all(map(count, v))

    def loader_state(v):
        try:
            data.loader_counters(v)
        except ValueError:
            return False
        return True

    def pcg64_state(v):  # both generators are NumPy's default, PCG64
        try:
            np.random.PCG64().state = v
        except (TypeError, ValueError, KeyError):
            return False
        return True

    expected = {
        "config": (lambda v: isinstance(v, dict), "an object of settings"),
        "step": (count, "a step count (an int, 0 or more)"),
        "loader": (loader_state, "an object with the counts epoch, position and seed"),
        "noise_rng": (pcg64_state, "the state of a PCG64 random generator"),
        "rng": (pcg64_state, "the state of a PCG64 random generator"),
        "opt_g_steps": (counts, "a list of step counts"),
        "opt_d_steps": (counts, "a list of step counts"),
        "history": (lambda v: isinstance(v, list) and all(isinstance(h, dict) and all(backend.is_number(h.get(k)) for k in STEP_STATS)
                                                          for h in v),
                    f"a list of each step's {', '.join(STEP_STATS)}"),
        "epoch_metrics": (lambda v: isinstance(v, list) and all(isinstance(e, dict) for e in v), "a list of objects"),
    }
    return [f"its {field} is {meta[field]!r:.40}, expected {what}"
            for field, (ok, what) in expected.items() if field in meta and not ok(meta[field])]


def _saved(saved_config, field):
    """A checkpoint's setting (one newer than the checkpoint counts as its default)."""
    return saved_config.get(field, getattr(Config, field))


def _changed_run_field(path, saved_config, config):
    """The error for the first RUN_FIELDS setting of ``config`` that is not the
    checkpoint's, or None."""
    for field in RUN_FIELDS:
        theirs, ours = _saved(saved_config, field), getattr(config, field)
        if theirs != ours:
            return (f"{path!r} comes from a run with {field}={theirs!r}, but this run has {field}={ours!r}; "
                    f"a resumed run keeps the checkpoint's {', '.join(RUN_FIELDS)}")
    return None


def resumed_config(path, **changes):
    """The configuration a checkpoint's run used, with ``changes`` (say, more epochs)."""
    _, meta = read_checkpoint(path)
    config = dataclasses.replace(Config(**meta["config"]), **changes)
    # A change the run may not make is named as such, before the checks that it
    # would otherwise trip (another model: "d depth applies to the dcgan only").
    if problem := _changed_run_field(path, meta["config"], config):
        raise ConfigError(problem)
    try:
        return config.validate()
    except ConfigError as e:  # (a hand-edited checkpoint, or a change): say where the settings came from
        changed = sorted(k for k, v in changes.items() if v != _saved(meta["config"], k))
        given = f", with {', '.join(changed)} changed" if changed else ""
        raise ConfigError(f"{e} (the settings of {path!r}{given})") from None


def _optimizer_arrays(opt):
    return {str(i): {k: v for k, v in s.items() if not isinstance(v, int)} for i, s in enumerate(opt.state_dict()["state"])}


def _load_optimizer(opt, arrays, steps, path, name):
    """Adam's state from a checkpoint: per parameter, its step count and, once it has
    taken a step, its moments (the arrays ``name``/<parameter>/exp_avg, exp_avg_sq)."""
    states = []
    for i, t in enumerate(steps):
        moments = arrays.get(str(i), {})
        missing = [key for key in ADAM_MOMENTS if key not in moments]
        if t and missing:
            raise CheckpointError(f"{path!r} is damaged: it has no {name}/{i}/{missing[0]}")
        states.append({**moments, **({"step": t} if t else {})})
    try:
        opt.load_state_dict({"state": states, "param_groups": opt.param_groups})  # the config's settings, kept
    except ValueError as e:
        raise TrainingError(f"the checkpoint's optimiser state does not fit: {e}") from None


class _StopRequest:
    """The first Ctrl-C (SIGINT), or SIGTERM (a kill, a timeout, a job scheduler), is noted
    (``requested``: its number) instead of killing the step: the loop finishes the step,
    saves and stops. A second one interrupts at once, with a KeyboardInterrupt that
    names the checkpoint on disk (checkpoint writes are atomic, so it stays whole).
    Python runs signal handlers in the main thread only, and only there can they be
    set: elsewhere nothing changes."""

    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __init__(self, trainer):
        self.trainer = trainer
        self.requested = 0  # the number of the signal that asked the run to stop
        self.previous = {}  # signal -> the handler to put back

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            self.previous = {s: signal.signal(s, self._handle) for s in self.SIGNALS}
        return self

    def _handle(self, signum, frame):
        if self.requested:
            saved = self.trainer.saved
            raise KeyboardInterrupt("no checkpoint was saved" if saved is None
                                    else f"the checkpoint {saved[0]}, at step {saved[1]}, is intact")
        self.requested = signum

    def __exit__(self, *exc):
        for s, handler in self.previous.items():
            signal.signal(s, handler)


def prepare_output(out, model, resume=None):
    """Create the run folder, with a clear error; returns it and the path of its checkpoint.

    The default, runs/<model>-<timestamp>/, is always a new folder (-2, -3, ... after
    the name when another run started in the same second). A folder given by name that
    holds another run's checkpoint (any but ``resume``) is refused: this run's first
    checkpoint would overwrite it."""
    default = not out
    if default:
        out = os.path.join("runs", f"{model}-{time.strftime('%Y%m%d-%H%M%S')}")
    else:
        checkpoint = os.path.join(out, CHECKPOINT)
        if os.path.exists(checkpoint) and not (resume and os.path.samefile(resume, checkpoint)):
            raise TrainingError(f"{out} already holds the checkpoint of another run: continue it with "
                                f"--resume {checkpoint}, or choose another --out")
    try:
        if default:
            out = _new_folder(out)
        else:
            os.makedirs(out, exist_ok=True)
        probe = os.path.join(out, ".write-test")
        with open(probe, "w"):
            pass
        os.unlink(probe)
    except OSError as e:
        why = "it is a file" if os.path.isfile(out) else e.strerror  # (not "File exists")
        raise TrainingError(f"cannot write to the output folder {out!r}: {why}") from None
    return out, os.path.join(out, CHECKPOINT)


def _new_folder(path):
    """Make the folder ``path``, or the first of ``path``-2, ``path``-3, ... that is free.
    A name is taken by making the folder, which fails if it exists, not by looking
    first: two runs that looked at the same moment would both take the same name."""
    for n in itertools.count(1):
        candidate = path if n == 1 else f"{path}-{n}"
        try:
            os.makedirs(candidate)
            return candidate
        except FileExistsError:
            continue


def train(config, resume=None, progress=True, max_steps=None):
    """Train, writing sample grids, the loss curve and checkpoints to the run folder.

    A checkpoint is saved at the end of every epoch and when training stops (at the
    end, at ``max_steps``, or on Ctrl-C or SIGTERM). ``max_steps`` counts every step
    of the run, those before a resume too, so ``train(c, max_steps=k)`` then
    ``train(c, resume=checkpoint, max_steps=n)`` ends with the weights of
    ``train(c, max_steps=n)``, bit for bit. Returns a dict with the paths written,
    the trainer, the training time and the steps taken in it (``steps_run``: fewer
    than ``trainer.step`` after a resume), and ``interrupted``: the number of the
    signal that stopped it (Ctrl-C's 2, SIGTERM's 15), or 0.
    """
    trainer = Trainer(config)
    if resume:
        trainer.load(resume)
    steps_per_epoch = len(trainer.loader)
    total = config.epochs * steps_per_epoch if max_steps is None else min(max_steps, config.epochs * steps_per_epoch)
    if trainer.step >= total:
        done = trainer.step // steps_per_epoch
        raise TrainingError(f"the checkpoint is at step {trainer.step}, after {done} epochs of {steps_per_epoch} steps, "
                            f"and this run ends at step {total}: ask for more than {done} epochs")
    out, checkpoint = prepare_output(config.out, config.model, resume)
    with open(os.path.join(out, "config.json"), "w") as f:
        json.dump(dataclasses.asdict(config), f, indent=2)
    # The metrics' classifier (trained, a minute or so, the first time) before the first
    # step: a Ctrl-C meanwhile stops at once, and no epoch is lost if it cannot be had.
    if config.metrics:
        trainer.classifier(progress)
    start, first_step = time.perf_counter(), trainer.step
    # NaN and infinity are caught by the loss and checkpoint checks, which name the step;
    # NumPy's warnings about them would only repeat that, in the middle of the progress bar.
    quiet = np.errstate(over="ignore", invalid="ignore", divide="ignore")
    # On a terminal the bar redraws ten times a second; into a log file (not a terminal)
    # every redraw would be kept, so there it is written once a minute.
    redraw = 0.1 if sys.stderr.isatty() else 60
    with _StopRequest(trainer) as stop, quiet, tqdm(total=total, initial=trainer.step, disable=not progress, unit="step",
                                                    mininterval=redraw, maxinterval=redraw) as bar:
        pending = []  # (step, statistics) not yet read back from the device
        while trainer.step < total and not stop.requested:
            epoch = trainer.step // steps_per_epoch + 1
            bar.set_description(f"epoch {epoch}/{config.epochs}", refresh=False)  # (drawn at the next redraw)
            for batch in trainer.loader:  # the rest of this epoch
                pending.append((trainer.step + 1, trainer.train_step(*batch)))
                bar.update(1)
                if len(pending) == config.log_every:
                    # One read-back for several steps: on a GPU this is the only sync.
                    trainer.record(pending)
                    last = trainer.history[-1]
                    # The losses first: tqdm cuts a line at the terminal's width, at its end.
                    bar.set_postfix_str(f"loss D {last['loss_d']:.3f} G {last['loss_g']:.3f}, "
                                        f"D(x) {last['d_real']:.2f} D(G(z)) {last['d_fake']:.2f}", refresh=False)
                if trainer.step >= total or stop.requested:
                    break
            trainer.record(pending)  # every step is checked before a checkpoint holds it
            # An epoch's samples and metrics only at its end: a stop in the middle records
            # none, so a resumed run records every epoch once, as a straight run does.
            if trainer.step % steps_per_epoch == 0 and (epoch % config.report_every == 0 or epoch == config.epochs):
                if stop.requested:  # saved before the report too: a SIGKILL may follow a SIGTERM soon
                    trainer.save(checkpoint)
                samples = trainer.samples()
                save_grid(samples, os.path.join(out, f"samples_epoch{epoch:03d}.png"),
                          title=f"epoch {epoch}, step {trainer.step}", row_labels=trainer.row_labels())
                trainer.timeline[epoch] = samples[::8]  # the first column of the grid
                dashboard.write_epoch(trainer, out, epoch, steps=steps_per_epoch)
            trainer.save(checkpoint)
        if trainer.step == first_step:  # stopped before its first step: a checkpoint all the same
            trainer.save(checkpoint)
        seconds = time.perf_counter() - start
        save_grid(trainer.samples(), os.path.join(out, "samples_final.png"),
                  title=f"after {trainer.step} steps", row_labels=trainer.row_labels())
        plot_losses(trainer.history, os.path.join(out, "losses.png"), critic=config.loss == "wgan-gp")
        dashboard.save_interpolation(trainer, os.path.join(out, "interpolation.png"))
        if trainer.timeline:  # empty when the run stopped before its first epoch's end
            dashboard.save_timeline(trainer.timeline, os.path.join(out, "timeline.png"))
    # (a Ctrl-C after the last step, while the pictures are drawn, stopped nothing)
    return {"out": out, "checkpoint": checkpoint, "trainer": trainer, "seconds": seconds,
            "steps_run": trainer.step - first_step, "interrupted": stop.requested if trainer.step < total else 0}
