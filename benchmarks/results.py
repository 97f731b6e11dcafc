"""The results table of docs/results.md: every GAN variant trained for the same
number of steps, then scored by the metrics of ``minigan.metrics``.

    python benchmarks/results.py                 # all rows, 390 steps each (5 DCGAN epochs)
    python benchmarks/results.py --steps 100 --only mlp   # a quick look at some rows

One step is one batch of real digits (64 unless the row says otherwise) and one D
update (G updates once every ``d_steps`` of them, so WGAN-GP's G gets a fifth of the
updates). The DCGAN rows are the lecture notes' DCGAN (Config's defaults) unless they
name a deeper G or D; the last row is the DCGAN as ``examples/mnist_gan.py`` runs it. The figures are
those of 1,000 samples after the last step (the same noise for every row) against
the classifier's 1,000 held-out digits (split "test"; the GANs train on all 5,000, so
for them these are training digits). Run folders go to runs/results/<row>/.
"""

import argparse
import dataclasses
import os
import re
import shutil
import sys
import time

from minigan import data, metrics
from minigan.train import DCGAN_RUN_SETTINGS, WGAN_GP_SETTINGS, Config, train

NS, MM, WGAN = "nonsaturating", "minimax", "wgan-gp"
ROWS = [  # (row name, Config settings)
    ("MLP, non-saturating, smoothing 0.9", dict(model="mlp", loss=NS)),
    ("MLP, non-saturating, no smoothing", dict(model="mlp", loss=NS, label_smoothing=1.0)),
    ("MLP, minimax, smoothing 0.9", dict(model="mlp", loss=MM)),
    ("MLP, minimax, no smoothing", dict(model="mlp", loss=MM, label_smoothing=1.0)),
    ("DCGAN, non-saturating, smoothing 0.9 (Config's default)", dict(model="dcgan", loss=NS)),
    ("DCGAN, non-saturating, no smoothing", dict(model="dcgan", loss=NS, label_smoothing=1.0)),
    ("DCGAN, minimax, smoothing 0.9", dict(model="dcgan", loss=MM)),
    ("DCGAN, minimax, no smoothing", dict(model="dcgan", loss=MM, label_smoothing=1.0)),
    ("conditional DCGAN, non-saturating, 0.9", dict(model="dcgan", loss=NS, conditional=True)),
    ("DCGAN, WGAN-GP (n_critic 5)", dict(model="dcgan", loss=WGAN, **WGAN_GP_SETTINGS)),
    ("DCGAN, D of 3 convolutions", dict(model="dcgan", loss=NS, d_depth=3)),
    ("DCGAN, D of 3, G of 4 convolutions", dict(model="dcgan", loss=NS, d_depth=3, g_depth=4)),
    ("DCGAN, D of 3, G of 4, lr 1e-3, batch 32, EMA 0.99 (the example's)", dict(model="dcgan", loss=NS, **DCGAN_RUN_SETTINGS)),
]
BEGIN, END = "<!-- results:begin -->", "<!-- results:end -->"


def slug(name):
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")


def markdown_row(name, m, seconds=None):
    time_cell = "" if seconds is None else f"{seconds:.0f}"
    return (f"| {name} | {m['fid']:.1f} | {m['score']:.2f} | {m['classes_hit']}/10 | "
            f"{m['class_kl']:.3f} | {time_cell} |")


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--steps", type=int, default=390, help="steps per row (default: %(default)s)")
    p.add_argument("--only", default=None, help="run only the rows whose name contains this text")
    p.add_argument("--doc", default="docs/results.md", help="the file whose results block is rewritten")
    args = p.parse_args(argv)
    classifier = metrics.load_classifier()
    digits, _ = data.mnist(split="all")
    bounds = metrics.Evaluator(classifier).bounds()
    lines = [
        f"Command: `python benchmarks/results.py --steps {args.steps}` ({args.steps} steps per row, of batch 64 unless the row says, "
        f"seed 0; classifier accuracy on the held-out digits {classifier.accuracy:.1%}).",
        "",
        "| run | classifier-FID ↓ | score ↑ | classes | KL(hist ‖ uniform) ↓ | seconds |",
        "|---|---:|---:|---:|---:|---:|",
        markdown_row("floor: real training digits", bounds["floor"]),
        markdown_row("ceiling: uniform noise", bounds["ceiling"]),
    ]
    for name, settings in ROWS:
        if args.only and args.only.lower() not in name.lower():
            continue
        out = os.path.join("runs", "results", slug(name))
        shutil.rmtree(out, ignore_errors=True)  # the row's run of a rerun replaces the last one
        config = Config(out=out, **settings)
        per_epoch = len(digits) // config.batch_size  # the loader drops the last, partial batch
        config = dataclasses.replace(config, epochs=-(-args.steps // per_epoch))  # enough epochs for the steps
        start = time.perf_counter()
        result = train(config, progress=False, max_steps=args.steps)
        seconds = time.perf_counter() - start
        trainer = result["trainer"]  # scored where it stopped, which may be mid-epoch
        row = markdown_row(name, trainer.evaluator.evaluate(trainer.samples(*trainer.eval_noise)), seconds)
        print(row, flush=True)
        lines.append(row)
    block = "\n".join([BEGIN, *lines, END])
    if os.path.exists(args.doc) and not args.only:
        text = open(args.doc).read()
        if BEGIN in text and END in text:
            text = text[: text.index(BEGIN)] + block + text[text.index(END) + len(END):]
            with open(args.doc, "w") as f:
                f.write(text)
            print(f"wrote {args.doc}")
            return 0
    print(block)
    return 0


if __name__ == "__main__":
    sys.exit(main())
