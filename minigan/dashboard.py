"""What the learner sees while a GAN trains, written to the run folder:

* ``metrics.json``: one record per epoch (mean losses and D outputs of the epoch,
  classifier-FID, classifier score, class coverage), with the floor and ceiling
  of each metric beside them (see ``minigan.metrics``);
* ``dashboard.png``: losses, D(x) and D(G(z)), FID and score over the epochs, and
  the class histogram of the last samples;
* at the end, ``interpolation.png`` (G along great circles between noise vectors)
  and ``timeline.png`` (the same fixed-noise samples, epoch after epoch).
"""

import json
import os

import numpy as np
from tqdm import tqdm

from .metrics import HIT_SHARE, NUM_CLASSES
from .plots import plt, save_grid, whole_x_ticks


def epoch_record(trainer, epoch, steps):
    """The epoch's means of the per-step statistics, plus the metrics when the
    trainer has an evaluator. Prints a warning when classes go missing."""
    record = {"epoch": epoch, "step": trainer.step}
    for key in ("loss_d", "loss_g", "d_real", "d_fake"):
        record[key] = float(np.mean([h[key] for h in trainer.history[-steps:]]))
    if trainer.evaluator is not None:
        record.update(trainer.evaluator.evaluate(trainer.samples(*trainer.eval_noise)))
        if record["classes_hit"] < NUM_CLASSES:
            missing = [c for c, share in enumerate(record["histogram"]) if share < HIT_SHARE / NUM_CLASSES]
            tqdm.write(f"warning: epoch {epoch}: the samples cover {record['classes_hit']} of 10 classes "
                       f"(too few {missing}): mode collapse?")
    return record


def write_epoch(trainer, out, epoch, steps):
    """Record the epoch in trainer.epoch_metrics; rewrite metrics.json and dashboard.png."""
    trainer.epoch_metrics.append(epoch_record(trainer, epoch, steps))
    bounds = trainer.evaluator.bounds() if trainer.evaluator is not None else {}
    with open(os.path.join(out, "metrics.json"), "w") as f:
        json.dump({**bounds, "epochs": trainer.epoch_metrics}, f, indent=2)
    save_dashboard(trainer.history, trainer.epoch_metrics, bounds, os.path.join(out, "dashboard.png"),
                   critic=trainer.config.loss == "wgan-gp")


def _smooth(values, width=25):
    """Running mean over ``width`` steps (the raw per-step curve is very noisy), or over
    half the steps of a shorter run, which keeps a curve (a full-width mean is one point)."""
    if len(values) == 0:
        return np.asarray(values, dtype=float)
    width = max(1, min(width, len(values) // 2))
    return np.convolve(values, np.ones(width) / width, mode="valid")


def save_dashboard(history, epochs, bounds, path, critic=False):
    fig, axes = plt.subplots(2, 3, figsize=(14, 7))
    (ax_loss, ax_d, ax_hist), (ax_fid, ax_score, ax_cov) = axes
    d_name = "critic score" if critic else "probability"
    for ax, keys in ((ax_loss, (("loss_d", "loss D"), ("loss_g", "loss G"))),
                     (ax_d, (("d_real", "D(x)"), ("d_fake", "D(G(z))")))):
        for key, label in keys:
            values = _smooth([h[key] for h in history])
            ax.plot(np.arange(len(values)) + (len(history) - len(values)) + 1, values, label=label, lw=1)
        ax.set_xlabel("step")
        ax.legend()
    whole_x_ticks(ax_loss, ax_d)
    ax_loss.set_title("losses (running mean)")
    ax_d.set_title(f"D's output, {d_name} (running mean)")
    if not critic:
        ax_d.set_ylim(0, 1)
    measured = [e for e in epochs if "fid" in e]
    x = [e["epoch"] for e in measured]
    for ax, key, title in ((ax_fid, "fid", "classifier-FID (lower is better)"),
                           (ax_score, "score", "classifier score (max 10)"),
                           (ax_cov, "classes_hit", "classes covered")):
        ax.set_xlabel("epoch")
        ax.set_title(title)
        if not measured:
            continue
        ax.plot(x, [e[key] for e in measured], "o-", label="samples")
        for name, style in (("floor", "g--"), ("ceiling", "r:")):
            if name in bounds:
                ax.axhline(bounds[name][key], color=style[0], ls=style[1:], label=f"{name} (real)" if name == "floor" else f"{name} (noise)")
        whole_x_ticks(ax)
        ax.legend(fontsize=8)
    if bounds:
        ax_fid.set_yscale("log")
    ax_cov.set_ylim(0, NUM_CLASSES + 0.5)
    if measured:
        ax_hist.bar(range(NUM_CLASSES), measured[-1]["histogram"])
        ax_hist.axhline(1 / NUM_CLASSES, color="g", ls="--", label="uniform")
        ax_hist.legend(fontsize=8)
        ax_hist.set_xticks(range(NUM_CLASSES))
    ax_hist.set_xlabel("predicted class")
    ax_hist.set_title("classes of the last samples")
    if not measured:  # a run with Config.metrics off: say why these panels are empty
        for ax in (ax_hist, ax_fid, ax_score, ax_cov):
            ax.text(0.5, 0.5, "not measured in this run", transform=ax.transAxes, ha="center", color="gray")
            ax.set_xticks([])
            ax.set_yticks([])
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)


# --- the end of training: latent interpolation and the timeline ---------------------
def slerp(z0, z1, t):
    """Spherical interpolation: along the great circle from z0 to z1 (rows of vectors).

        slerp(z0, z1, t) = sin((1 - t)·Ω)/sin Ω · z0 + sin(t·Ω)/sin Ω · z1,  cos Ω = ẑ0·ẑ1

    Gaussian noise in 100 dimensions lies near a sphere of radius √100; a straight
    line between two such points cuts through the inside, where G never saw any z.
    """
    cos = np.sum(z0 * z1, -1, keepdims=True) / (np.linalg.norm(z0, axis=-1, keepdims=True) * np.linalg.norm(z1, axis=-1, keepdims=True))
    omega = np.arccos(np.clip(cos, -1, 1))
    if np.any(np.sin(omega) < 1e-6):  # (anti)parallel vectors: no unique great circle
        return (1 - t) * z0 + t * z1
    return (np.sin((1 - t) * omega) * z0 + np.sin(t * omega) * z1) / np.sin(omega)


def save_interpolation(trainer, path, rows=10, steps=10, seed=0):
    """Each row: G along the slerp path between two random noise vectors (a
    conditional G keeps one class per row)."""
    rng = np.random.default_rng(seed)
    z0, z1 = rng.standard_normal((2, rows, trainer.config.latent_dim))
    t = np.linspace(0, 1, steps)[None, :, None]
    z = slerp(z0[:, None], z1[:, None], t).reshape(rows * steps, -1)
    labels = np.repeat(np.arange(rows) % NUM_CLASSES, steps) if trainer.config.conditional else None
    save_grid(trainer.samples(z, labels), path, nrow=steps, title="latent interpolation (slerp), left to right")


def save_timeline(timeline, path):
    """One column per epoch: the same fixed-noise samples as G learned."""
    epochs = sorted(timeline)
    stacked = np.stack([timeline[e] for e in epochs], axis=1)  # (samples, epochs, 1, 28, 28)
    n, k = stacked.shape[:2]
    which = f"epoch {epochs[0]}" if k == 1 else f"epochs {epochs[0]} to {epochs[-1]}"
    save_grid(stacked.reshape(n * k, *stacked.shape[2:]), path, nrow=k, title=f"fixed noise, {which}")
