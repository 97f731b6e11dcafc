"""Pictures: sample grids and loss curves (matplotlib's Agg backend, no display needed)."""

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402


PAD = 2  # grid pixels around and between the images of a grid


def image_grid(images, nrow=8, pad=PAD):
    """Tile (N, 1, H, W) images in [-1, 1] into one (rows·(H+pad)+pad, nrow·(W+pad)+pad) array in [0, 1]."""
    images = np.asarray(images, dtype=np.float32)
    n, _, h, w = images.shape
    ncol = nrow
    nrows = -(-n // ncol)
    grid = np.ones((nrows * (h + pad) + pad, ncol * (w + pad) + pad), dtype=np.float32)
    pixels = (np.clip(images[:, 0], -1, 1) + 1) / 2  # tanh range [-1, 1] -> [0, 1]
    for k in range(n):
        r, c = divmod(k, ncol)
        grid[pad + r * (h + pad) : pad + r * (h + pad) + h, pad + c * (w + pad) : pad + c * (w + pad) + w] = pixels[k]
    return grid


def save_grid(images, path, nrow=8, title=None, row_labels=None):
    """Save images in [-1, 1] as one PNG grid (black digits' background, white strokes),
    with a label to the left of each row if given (e.g. the digit a conditional G drew)."""
    grid = image_grid(images, nrow)
    rows = -(-len(images) // nrow)
    if row_labels is not None and len(row_labels) != rows:
        raise ValueError(f"save_grid: {len(row_labels)} row labels for {rows} rows of {nrow} images")
    margin = 12 if row_labels is not None else 0  # grid pixels to the left, for the labels
    fig = plt.figure(figsize=((grid.shape[1] + margin) / 40, grid.shape[0] / 40 + (0.3 if title else 0)), dpi=100)
    ax = fig.add_axes([0, 0, 1, grid.shape[0] / (grid.shape[0] + (12 if title else 0))])
    ax.imshow(grid, cmap="gray", vmin=0, vmax=1, interpolation="nearest")
    ax.set_xlim(-0.5 - margin, grid.shape[1] - 0.5)
    ax.axis("off")
    if row_labels is not None:
        row_height = (grid.shape[0] - PAD) / rows  # an image and the pad below it
        for r, label in enumerate(row_labels):
            ax.text(-PAD, PAD + (r + 0.5) * row_height, str(label), ha="right", va="center", fontsize=8)
    if title:
        text = fig.suptitle(title, fontsize=8, y=0.995)
        # A grid of one or two columns is narrower than its title: widen the figure (the
        # grid keeps its size, centred) so that the title is not cut off at both ends.
        title_width = text.get_window_extent(fig.canvas.get_renderer()).width / fig.dpi + 0.1
        fig.set_figwidth(max(fig.get_figwidth(), title_width))
    fig.savefig(path)
    plt.close(fig)


def whole_x_ticks(*axes):
    """Ticks on whole numbers only along the x axes, which count steps or epochs (the
    default locator puts ticks at 22.5 on a short run)."""
    for ax in axes:
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))


def plot_losses(history, path, critic=False):
    """Loss and D-output curves from a list of per-step dicts with loss_d, loss_g, d_real,
    d_fake (with ``critic``, a WGAN critic's scores: no probabilities)."""
    steps = np.arange(1, len(history) + 1)
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 3.5))
    for key, label in (("loss_d", "loss D"), ("loss_g", "loss G")):
        ax1.plot(steps, [h[key] for h in history], label=label, lw=0.8)
    ax1.set_xlabel("step")
    ax1.set_title("losses")
    ax1.legend()
    for key, label in (("d_real", "D(x)"), ("d_fake", "D(G(z))")):
        ax2.plot(steps, [h[key] for h in history], label=label, lw=0.8)
    ax2.set_xlabel("step")
    whole_x_ticks(ax1, ax2)
    if not critic:
        ax2.set_ylim(0, 1)  # probabilities
    ax2.set_title("critic scores" if critic else "discriminator outputs (probabilities)")
    ax2.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
