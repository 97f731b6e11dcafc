"""How good are the generated digits? Metrics built on an MNIST classifier trained by minigan.

A small CNN learns to classify the 4,000 training digits of the bundled set and is
tested on the 1,000 held-out ones. From it:

* classifier-FID: model the classifier's penultimate-layer features f(x) of the
  generated digits and of real held-out digits as two Gaussians N(μ₁, Σ₁), N(μ₂, Σ₂);
  their Fréchet distance is
      ‖μ₁ - μ₂‖² + tr(Σ₁ + Σ₂ - 2·(Σ₁^½ Σ₂ Σ₁^½)^½)
  (FID with the classifier in place of Inception). 0 means the same statistics.
* classifier score: exp(E_x KL(p(y|x) ‖ p(y))), with p(y) the mean of p(y|x) over
  the samples (the Inception Score with this classifier). Between 1 and 10: high
  when each digit is clearly one class (p(y|x) sharp) and all classes appear
  (p(y) flat).
* mode coverage: how many of the 10 classes get a fair part of the samples, and
  KL(histogram of predicted classes ‖ uniform), 0 for perfectly balanced classes.

Every figure comes with a floor (real training digits against the real held-out
ones: the best a generator can do) and a ceiling (uniform noise images: the worst).
"Held-out" is the classifier's split: the GANs of minigan.train learn from all
5,000 digits, so for them the reference digits are training digits, as FID's
reference set usually is.

    python -m minigan.metrics           # train the classifier once (cached), report
"""

import argparse
import json
import os
import sys
import time

import numpy as np

from . import backend, data, nn, optim
from .autograd import no_grad
from .checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from .nn import functional as F
from .random import manual_seed
from .tensor import Tensor

NUM_CLASSES = 10
CLASSIFIER_FORMAT = "minigan-mnist-classifier-3"  # bump when the network, its training or its convolutions' sums change
HIT_SHARE = 0.2  # a class is "hit" when it gets at least a fifth of its fair share (1/10)


def mnist_classifier():
    """(1, 28, 28) -> Conv(1→32, 5) -> ReLU -> AvgPool 2 -> (32, 12, 12)
    -> Conv(32→64, 5) -> ReLU -> AvgPool 2 -> (64, 4, 4)
    -> Linear(1024→128) -> ReLU  [the features]  -> Linear(128→10) logits."""
    return nn.Sequential(
        nn.Conv2d(1, 32, 5), nn.ReLU(), nn.AvgPool2d(2),
        nn.Conv2d(32, 64, 5), nn.ReLU(), nn.AvgPool2d(2),
        nn.Flatten(), nn.Linear(64 * 4 * 4, 128), nn.ReLU(),
        nn.Linear(128, NUM_CLASSES),
    )


def random_shifts(images, rng, max_shift=2):
    """Move each digit by up to ``max_shift`` pixels in x and y (zero-padded with
    background -1): cheap augmentation that teaches the classifier to ignore position."""
    n, _, h, w = images.shape
    padded = np.pad(images, ((0, 0), (0, 0), (max_shift,) * 2, (max_shift,) * 2), constant_values=-1.0)
    dy, dx = rng.integers(0, 2 * max_shift + 1, size=(2, n))
    return np.stack([padded[i, :, dy[i]:dy[i] + h, dx[i]:dx[i] + w] for i in range(n)])


def _batches(images, size=500):
    for start in range(0, len(images), size):
        yield images[start:start + size]


class Classifier:
    """The trained CNN with the two readings the metrics need."""

    def __init__(self, net, accuracy=None, device="cpu"):
        self.net, self.accuracy, self.device = net.to(device).eval(), accuracy, device

    def read(self, images):
        """(penultimate-layer features, class probabilities p(y|x)) as float64 NumPy
        arrays, computed in batches."""
        features, logits = [], []
        layers = list(self.net)  # a Sequential, in order
        with no_grad():
            for batch in _batches(np.asarray(images, dtype=np.float32)):
                h = Tensor(backend.to_device(batch, self.device))
                for layer in layers[:-1]:
                    h = layer(h)
                features.append(h.numpy())
                logits.append(layers[-1](h).numpy())
        logits = np.concatenate(logits).astype(np.float64)
        e = np.exp(logits - logits.max(1, keepdims=True))  # softmax, without overflow
        return np.concatenate(features).astype(np.float64), e / e.sum(1, keepdims=True)

    def predict(self, images):
        return self.read(images)[1].argmax(1)


def train_classifier(epochs=30, batch_size=64, lr=2e-3, seed=0, train_size=None, progress=True, device="cpu"):
    """Train the CNN on split "train" (with random shifts) and measure split "test".

    Adam at ``lr``, then at lr/10 for the last quarter of the epochs, to settle.
    The score's scale rests on how sure the classifier is of real digits: real
    MNIST should score about 9.9 of 10. After 12 epochs the real training digits
    scored 9.68 (the classifier hedged on digits it classified right); after 30
    they score about 9.9, and the held-out accuracy rose from 98.4% to 98.6-98.8%.
    ``train_size`` keeps only that many training digits (for quick tests)."""
    manual_seed(seed)
    net = mnist_classifier().to(device)
    images, labels = data.mnist(split="train")
    if train_size is not None:
        keep = np.random.default_rng(seed).permutation(len(images))[:train_size]
        images, labels = images[keep], labels[keep]
    opt = optim.Adam(net.parameters(), lr=lr)
    loader = data.DataLoader((images, labels), batch_size, shuffle=True, seed=seed)
    rng = np.random.default_rng([seed, 1])
    for epoch in range(epochs):
        for group in opt.param_groups:
            group["lr"] = lr if epoch < epochs - epochs // 4 else lr / 10
        total, start = 0.0, time.perf_counter()
        for x, y in loader:
            x = Tensor(backend.to_device(random_shifts(x, rng), device))
            loss = F.cross_entropy(net(x), backend.to_device(y, device))
            opt.zero_grad()
            loss.backward()
            opt.step()
            total += loss.item()
        if progress:
            print(f"  classifier epoch {epoch + 1}/{epochs}: loss {total / len(loader):.4f} "
                  f"({time.perf_counter() - start:.0f} s)", flush=True)
    test_images, test_labels = data.mnist(split="test")
    classifier = Classifier(net, device=device)
    classifier.accuracy = float((classifier.predict(test_images) == test_labels).mean())
    return classifier


def _cache_path(cache_dir=None):
    return os.path.join(cache_dir or data.default_cache_dir(), f"{CLASSIFIER_FORMAT}.npz")


def load_classifier(cache_dir=None, device="cpu", train_if_missing=True, progress=True):
    """The cached classifier, trained and cached first if there is none."""
    path = _cache_path(cache_dir)
    try:
        arrays, meta = load_checkpoint(path)
        if meta.get("format") != CLASSIFIER_FORMAT:
            raise CheckpointError(f"it holds {meta.get('format')!r}, not {CLASSIFIER_FORMAT!r}")
        net = mnist_classifier()
        net.load_state_dict(arrays["net"])
        return Classifier(net, meta["accuracy"], device)
    except FileNotFoundError:
        why = f"no trained classifier at {path} yet"
    except (CheckpointError, KeyError, RuntimeError) as e:  # there, but unusable: train below
        why = f"the classifier cached at {path} is unusable ({e})"
    if not train_if_missing:
        raise FileNotFoundError(f"{why}; run python -m minigan.metrics")
    # Said even without progress lines: the run waits a minute or so for it.
    print(f"training the MNIST classifier for the metrics (once; {why})", flush=True)
    classifier = train_classifier(progress=progress, device=device)
    arrays, meta = {"net": classifier.net.state_dict()}, {"format": CLASSIFIER_FORMAT, "accuracy": classifier.accuracy}
    data.write_cache(path, lambda path: save_checkpoint(path, arrays, meta), "classifier",
                     "the metrics use the classifier in memory, and the next run trains it again")
    return classifier


# --- the metrics -----------------------------------------------------------------
def _gaussian(features):
    return features.mean(0), np.cov(features, rowvar=False)


def _sqrt_psd(m):
    """The square root of a symmetric positive semi-definite matrix, from its eigenvectors."""
    w, v = np.linalg.eigh(m)
    return (v * np.sqrt(np.clip(w, 0, None))) @ v.T


def frechet_distance(mu1, cov1, mu2, cov2):
    """‖μ₁ - μ₂‖² + tr(Σ₁) + tr(Σ₂) - 2·tr((Σ₁ Σ₂)^½).

    Σ₁Σ₂ is not symmetric, but it is similar to S = Σ₁^½ Σ₂ Σ₁^½, which is symmetric
    PSD, so tr((Σ₁Σ₂)^½) = Σ √(eigenvalues of S): no general matrix square root needed.
    """
    root = _sqrt_psd(cov1)
    eigenvalues = np.linalg.eigvalsh(root @ cov2 @ root)
    trace_sqrt = np.sqrt(np.clip(eigenvalues, 0, None)).sum()
    return float(((mu1 - mu2) ** 2).sum() + np.trace(cov1) + np.trace(cov2) - 2 * trace_sqrt)


def classifier_score(probs):
    """exp(E_x KL(p(y|x) ‖ p(y))), p(y) = mean of p(y|x): from 1 (useless) to 10."""
    p_y = probs.mean(0, keepdims=True)
    kl = (probs * (np.log(probs + 1e-12) - np.log(p_y + 1e-12))).sum(1)
    return float(np.exp(kl.mean()))


def class_coverage(predicted):
    """(classes hit, KL(histogram ‖ uniform), histogram) of predicted classes."""
    histogram = np.bincount(predicted, minlength=NUM_CLASSES) / len(predicted)
    hit = int((histogram >= HIT_SHARE / NUM_CLASSES).sum())
    nonzero = histogram > 0
    kl = float((histogram[nonzero] * np.log(histogram[nonzero] * NUM_CLASSES)).sum())
    return hit, kl, histogram


class Evaluator:
    """Scores batches of images against the real held-out digits (split "test")."""

    def __init__(self, classifier):
        self.classifier = classifier
        test_images, _ = data.mnist(split="test")
        self.reference = _gaussian(classifier.read(test_images)[0])
        self._bounds = {}  # (n, seed) -> bounds

    def evaluate(self, images):
        """A dict: fid, score, classes_hit, class_kl, histogram (a list of 10 shares)."""
        images = np.asarray(images)
        # a covariance needs two samples; NaN would fail deep inside its eigenvalues
        if images.ndim != 4 or images.shape[0] < 2 or images.shape[1:] != (1, 28, 28):
            raise ValueError(f"evaluate needs at least 2 images of shape (N, 1, 28, 28), got shape {images.shape}")
        if not np.isfinite(images).all():
            raise ValueError("evaluate got images holding NaN or infinity: has the generator diverged?")
        features, probs = self.classifier.read(images)
        hit, kl, histogram = class_coverage(probs.argmax(1))
        return {
            "fid": frechet_distance(*_gaussian(features), *self.reference),
            "score": classifier_score(probs),
            "classes_hit": hit, "class_kl": kl, "histogram": histogram.round(4).tolist(),
        }

    def bounds(self, n=1000, seed=0):
        """{"floor": real training digits, "ceiling": uniform noise}, each evaluated
        like a generator's n samples against the held-out digits (n a multiple of 10)."""
        if n <= 0 or n % NUM_CLASSES:
            raise ValueError(f"bounds needs n, the number of samples, to be a positive multiple of {NUM_CLASSES}, got {n}")
        if (n, seed) not in self._bounds:
            rng = np.random.default_rng(seed)
            train_images, train_labels = data.mnist(split="train")
            # n real digits, the same number of each class (as a perfect generator would give)
            per_class = [rng.permutation(np.flatnonzero(train_labels == c))[: n // NUM_CLASSES] for c in range(NUM_CLASSES)]
            noise = rng.uniform(-1, 1, (n, 1, 28, 28)).astype(np.float32)
            self._bounds[n, seed] = {
                "floor": self.evaluate(train_images[np.concatenate(per_class)]),
                "ceiling": self.evaluate(noise),
            }
        return self._bounds[n, seed]


def format_row(name, m):
    return f"{name:<34} {m['fid']:>9.2f} {m['score']:>6.2f} {m['classes_hit']:>5d}/10 {m['class_kl']:>8.3f}"


HEADER = f"{'':<34} {'FID':>9} {'score':>6} {'classes':>8} {'KL(hist)':>8}"


def _json_path(path):
    """--json's file, checked before the work (which may train the classifier) rather than after it."""
    folder = os.path.dirname(os.path.abspath(path))
    if os.path.isdir(path):
        raise argparse.ArgumentTypeError(f"cannot write {path}: it is a folder; give a file name")
    if not os.path.isdir(folder):
        raise argparse.ArgumentTypeError(f"cannot write {path}: no folder {folder}")
    return path


def main(argv=None):
    p = argparse.ArgumentParser(description="Train (once) and report the MNIST classifier behind minigan's GAN metrics.")
    p.add_argument("--retrain", action="store_true", help="train again even if a cached classifier exists")
    p.add_argument("--json", type=_json_path, default=None, help="also write the figures to this JSON file")
    args = p.parse_args(argv)
    if args.retrain and os.path.exists(_cache_path()):
        os.unlink(_cache_path())
    start = time.perf_counter()
    classifier = load_classifier()
    print(f"classifier: {_cache_path()} ({time.perf_counter() - start:.0f} s)")
    print(f"held-out accuracy: {classifier.accuracy:.2%} on the 1,000 test digits (trained on 4,000)")
    bounds = Evaluator(classifier).bounds()
    print(HEADER)
    print(format_row("floor (real train vs held-out)", bounds["floor"]))
    print(format_row("ceiling (uniform noise)", bounds["ceiling"]))
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"accuracy": classifier.accuracy, **bounds}, f, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
