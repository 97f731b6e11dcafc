"""The three GAN losses: values and gradients on small inputs, the gradient penalty and
its gradient (double backward), and the D-before-G schedule."""

import dataclasses
import importlib
import importlib.util
import pathlib

import numpy as np
import pytest

import minigan as mg
from minigan import losses, models
from minigan.gradcheck import gradcheck, gradgradcheck
from minigan.nn import functional as F
from minigan.train import DCGAN_RUN_SETTINGS, WGAN_GP_SETTINGS, Config, ConfigError, Trainer, TrainingError

gradcheck_module = importlib.import_module("minigan.gradcheck")  # (mg.gradcheck is the function)
LOGITS = np.array([[-3.0], [-0.5], [0.0], [1.2], [4.0]])


def sigmoid(x):
    return 1 / (1 + np.exp(-x))


def identity(x):
    """A "discriminator" that returns its input: the losses then act on given logits."""
    return x


def logits(values=LOGITS, dtype="float64"):
    return mg.tensor(values, dtype=dtype, requires_grad=True)


# --- values ------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["minimax", "nonsaturating"])
@pytest.mark.parametrize("target", [0.9, 1.0])
def test_bce_d_loss_value(name, target):
    real, fake = LOGITS, -LOGITS[::-1] + 0.3
    loss, d_real, d_fake = losses.make(name, real_target=target).d_loss(identity, logits(real), logits(fake))
    expected = -np.mean(target * np.log(sigmoid(real)) + (1 - target) * np.log(1 - sigmoid(real))) \
        - np.mean(np.log(1 - sigmoid(fake)))
    assert loss.item() == pytest.approx(expected, rel=1e-12)
    np.testing.assert_array_equal(d_real.numpy(), real)
    np.testing.assert_array_equal(d_fake.numpy(), fake)


def test_label_smoothing_is_one_sided():
    """Changing the real target changes only the real half of D's loss."""
    real, fake = logits(), logits(LOGITS + 1)
    smooth = losses.make("nonsaturating", real_target=0.9).d_loss(identity, real, fake)[0].item()
    sharp = losses.make("nonsaturating", real_target=1.0).d_loss(identity, real, fake)[0].item()
    fake_part = -np.mean(np.log(1 - sigmoid(LOGITS + 1)))
    assert smooth - fake_part == pytest.approx(-np.mean(0.9 * np.log(sigmoid(LOGITS)) + 0.1 * np.log(1 - sigmoid(LOGITS))))
    assert sharp - fake_part == pytest.approx(-np.mean(np.log(sigmoid(LOGITS))))


def test_generator_loss_values():
    assert losses.make("minimax").g_loss(logits()).item() == pytest.approx(np.mean(np.log(1 - sigmoid(LOGITS))))
    assert losses.make("nonsaturating").g_loss(logits()).item() == pytest.approx(-np.mean(np.log(sigmoid(LOGITS))))
    assert losses.make("wgan-gp").g_loss(logits()).item() == pytest.approx(-LOGITS.mean())


def test_wgan_d_loss_value_with_a_linear_critic():
    """D(x) = w·x with ‖w‖ = 2: ∇D = w everywhere, so the penalty is (2 - 1)² = 1."""
    w = mg.tensor(np.array([[1.2, -1.6]]), dtype="float64")  # norm 2

    def critic(x):
        return F.linear(x, w)

    rng = np.random.default_rng(0)
    real, fake = (mg.tensor(rng.standard_normal((6, 2)), dtype="float64") for _ in range(2))
    loss, d_real, d_fake = losses.make("wgan-gp", gp_weight=10.0).d_loss(critic, real, fake)
    expected = (fake.numpy() @ w.numpy().T).mean() - (real.numpy() @ w.numpy().T).mean() + 10.0 * 1.0
    assert loss.item() == pytest.approx(expected, rel=1e-9)


# --- gradients ---------------------------------------------------------------------
def test_generator_gradients_saturate_only_for_minimax():
    """Where D rejects a fake confidently (logit -10), log(1 - D) is flat and
    -log D is steep: the reason for the non-saturating loss."""
    confident = np.array([[-10.0], [0.0]])
    grads = {}
    for name in ("minimax", "nonsaturating"):
        x = logits(confident)
        losses.make(name).g_loss(x).backward()
        grads[name] = x.grad[:, 0] * len(confident)  # per-sample d(loss)/d(logit)
    np.testing.assert_allclose(grads["minimax"], -sigmoid(confident[:, 0]), rtol=1e-12)  # -σ(ℓ)
    np.testing.assert_allclose(grads["nonsaturating"], sigmoid(confident[:, 0]) - 1, rtol=1e-12)  # σ(ℓ) - 1
    assert abs(grads["minimax"][0]) < 1e-4 < 0.99 < abs(grads["nonsaturating"][0])


@pytest.mark.parametrize("name", ["minimax", "nonsaturating", "wgan-gp"])
def test_loss_gradients_match_finite_differences(name):
    loss = losses.make(name, real_target=0.9)
    gradcheck(loss.g_loss, logits())
    if name != "wgan-gp":  # (the critic's D loss needs a critic; see the penalty tests)
        gradcheck(lambda r, f: loss.d_loss(identity, r, f)[0], logits(), logits(LOGITS * 0.5))


def test_gradient_penalty_gradient_of_linear_critic():
    """penalty(w) = (‖w‖ - 1)²  =>  d/dw = 2(‖w‖ - 1)·w/‖w‖."""
    w = mg.tensor(np.array([[0.3, -2.0, 1.0]]), dtype="float64", requires_grad=True)
    rng = np.random.default_rng(1)
    real, fake = (mg.tensor(rng.standard_normal((4, 3)), dtype="float64") for _ in range(2))
    penalty = losses.gradient_penalty(lambda x: F.linear(x, w), real, fake)
    norm = np.linalg.norm(w.numpy())
    assert penalty.item() == pytest.approx((norm - 1) ** 2, rel=1e-9)
    penalty.backward()
    np.testing.assert_allclose(w.grad, 2 * (norm - 1) * w.numpy() / norm, rtol=1e-9)


def test_gradient_penalty_gradient_is_zero_not_nan_where_the_critic_is_flat():
    # ‖∇D‖ has no derivative where ∇D = 0 (a critic with zero weights); the 1e-12
    # under the root makes the gradient 0 there, as PyTorch's norm does, not 0/0.
    w = mg.tensor(np.zeros((1, 3)), requires_grad=True)
    real, fake = mg.tensor(np.ones((4, 3))), mg.tensor(np.zeros((4, 3)))
    penalty = losses.gradient_penalty(lambda x: F.linear(x, w), real, fake)
    assert penalty.item() == pytest.approx(1.0, abs=1e-5)  # (‖0‖ - 1)²
    penalty.backward()
    np.testing.assert_array_equal(w.grad, 0.0)


def _float64(module):
    for p in module.parameters():
        p.data = p.data.astype(np.float64)
    return module


@pytest.mark.parametrize("model", ["mlp", "dcgan"])
def test_gradient_penalty_gradcheck_through_the_critic(model, monkeypatch):
    """The penalty's gradient with respect to the critic's weights goes through
    ∇ₓD (double backward through linear, conv2d, leaky ReLU, ...): gradcheck it,
    and gradgradcheck the critic itself, in float64. (Random-direction checks,
    several of them, keep the 28×28 critics fast.)"""
    monkeypatch.setattr(gradcheck_module, "FULL_JACOBIAN_PASSES", 0)
    mg.manual_seed(0)
    critic = _float64(models.mlp_discriminator(hidden=3) if model == "mlp"
                      else models.dcgan_discriminator(width=2, batch_norm=False))
    rng = np.random.default_rng(2)
    real, fake = (mg.tensor(rng.uniform(-1, 1, (2, 1, 28, 28)), dtype="float64") for _ in range(2))
    weights = list(critic.parameters())

    def penalty(*_weights):  # the weights are perturbed in place by gradcheck
        return losses.gradient_penalty(critic, real, fake, generator=np.random.default_rng(5))

    x = mg.tensor(rng.uniform(-1, 1, (2, 1, 28, 28)), dtype="float64", requires_grad=True)
    for seed in range(3):
        _, _, failure = gradcheck_module.compare(penalty, *weights, seed=seed)
        assert failure is None, failure
    assert gradgradcheck(lambda x, *_weights: critic(x), x, *weights)


def test_gradcheck_catches_a_penalty_without_double_backward():
    """The check can fail: a slope detached from the graph has no gradient to give."""
    w = mg.tensor(np.array([[0.3, -2.0, 1.0]]), dtype="float64", requires_grad=True)
    x = mg.tensor(np.ones((2, 3)), dtype="float64", requires_grad=True)

    def detached_penalty(w):
        with mg.enable_grad():
            (slope,) = mg.grad(F.linear(x, w).sum(), x, create_graph=False)
        return ((slope * slope).sum(1).sqrt() - 1) ** 2 + 0 * w.sum()

    assert not gradcheck(detached_penalty, w, raise_exception=False)


def test_batch_norm_critic_cannot_be_differentiated_twice():
    """Why the WGAN-GP critic has no batch norm (minigan's BN has no second derivative)."""
    D = models.dcgan_discriminator(width=2, batch_norm=True)
    real = fake = mg.zeros(2, 1, 28, 28)
    with pytest.raises(RuntimeError, match="no second derivative"):
        losses.gradient_penalty(D, real, fake)
    G, critic = models.build("dcgan", critic=True)
    assert not any("BatchNorm" in type(m).__name__ for m in critic.modules())


# --- the training schedule and the options ---------------------------------------
def quick_config(**changes):
    return Config(model="mlp", batch_size=8, limit=64, metrics=False, **changes)


def test_d_warmup_and_d_steps_schedule():
    """d_warmup=2, d_steps=3: D learns at every step, G only after steps 5, 8, ..."""
    trainer = Trainer(quick_config(d_warmup=2, d_steps=3))
    batches = iter(trainer.loader)
    g_changed, d_changed = [], []
    for _ in range(8):
        g_before = [p.data.copy() for p in trainer.G.parameters()]
        d_before = [p.data.copy() for p in trainer.D.parameters()]
        trainer.train_step(*next(batches))  # (images,): an unconditional GAN
        g_changed.append(any((a != p.data).any() for a, p in zip(g_before, trainer.G.parameters())))
        d_changed.append(any((a != p.data).any() for a, p in zip(d_before, trainer.D.parameters())))
    assert d_changed == [True] * 8
    assert g_changed == [False, False, False, False, True, False, False, True]


@pytest.mark.parametrize("model", ["mlp", "dcgan"])
@pytest.mark.parametrize("loss", ["minimax", "nonsaturating", "wgan-gp"])
def test_each_loss_trains_each_model(model, loss):
    settings = WGAN_GP_SETTINGS if loss == "wgan-gp" else {}
    trainer = Trainer(Config(model=model, loss=loss, batch_size=4, limit=8, metrics=False, **settings))
    (real,) = next(iter(trainer.loader))
    before = [p.data.copy() for p in trainer.D.parameters()]
    stats = {k: v.item() for k, v in trainer.train_step(real).items()}
    assert all(np.isfinite(v) for v in stats.values())
    assert any((a != p.data).any() for a, p in zip(before, trainer.D.parameters()))
    if loss != "wgan-gp":
        assert 0 < stats["d_real"] < 1 and 0 < stats["d_fake"] < 1  # probabilities


def test_config_rejects_bad_loss_options():
    with pytest.raises(ConfigError, match="unknown loss"):
        Config(loss="hinge").validate()
    with pytest.raises(ConfigError, match="label smoothing does not apply"):
        Config(loss="wgan-gp", label_smoothing=0.9).validate()
    with pytest.raises(ConfigError, match="d steps"):
        Config(d_steps=0).validate()


def _example():
    path = pathlib.Path(__file__).parents[1] / "examples" / "mnist_gan.py"
    spec = importlib.util.spec_from_file_location("mnist_gan_example", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_example_flags_reach_the_config():
    example = _example()
    config = example.make_config(example.parse_args(
        ["--model", "mlp", "--loss", "minimax", "--label-smoothing", "1.0", "--d-warmup", "7", "--d-steps", "2",
         "--conditional", "--no-metrics"]))
    assert (config.model, config.loss, config.label_smoothing, config.d_warmup, config.d_steps,
            config.conditional, config.metrics) == ("mlp", "minimax", 1.0, 7, 2, True, False)
    wgan = example.make_config(example.parse_args(["--loss", "wgan-gp"]))
    assert (wgan.lr, wgan.beta1, wgan.beta2, wgan.d_steps, wgan.label_smoothing) == (1e-4, 0.0, 0.9, 5, 1.0)
    deeper = example.make_config(example.parse_args(["--d-depth", "3", "--g-depth", "4"]))
    assert (deeper.d_depth, deeper.g_depth) == (3, 4)
    default = example.make_config(example.parse_args([]))
    assert (default.model, default.loss, default.label_smoothing, default.conditional, default.metrics) == \
        ("dcgan", "nonsaturating", 0.9, False, True)
    # the example's DCGAN is the deeper one; the flags give back the lecture notes' DCGAN
    assert all(getattr(default, k) == v for k, v in DCGAN_RUN_SETTINGS.items())
    notes = example.make_config(example.parse_args(
        ["--d-depth", "2", "--g-depth", "2", "--lr", "2e-4", "--batch-size", "64", "--ema", "0", "--epochs", "25"]))
    assert notes == Config()


# --- a deeper D (--d-depth 3) -----------------------------------------------------------
@pytest.mark.parametrize("critic", [False, True])
def test_three_layer_discriminator(critic):
    """depth 3: one more strided conv, (2w, 7, 7) -> (4w, 4, 4), then the logit; the
    layers of depth 2 keep their names, so depth-2 checkpoints still load."""
    two = models.dcgan_discriminator(width=4, batch_norm=not critic)
    three = models.dcgan_discriminator(width=4, batch_norm=not critic, depth=3)
    convs = [m for m in three.modules() if isinstance(m, mg.nn.Conv2d)]
    assert [(c.weight.shape, c.stride) for c in convs] == [
        ((4, 1, 4, 4), (2, 2)), ((8, 4, 4, 4), (2, 2)), ((16, 8, 3, 3), (2, 2))]
    assert three[len(three) - 1].weight.shape == (1, 16 * 4 * 4)
    assert any("BatchNorm" in type(m).__name__ for m in three.modules()) == (not critic)
    shared = [k for k in two.state_dict() if not k.startswith(str(len(two) - 1))]  # all but the logit layer
    assert set(shared) <= set(three.state_dict())
    out = three(mg.randn(3, 1, 28, 28))
    assert out.shape == (3, 1)


# --- a deeper G (--g-depth 4) -----------------------------------------------------------
def test_four_layer_generator():
    """depth 4: a 3×3 stride-1 conv (with BN and ReLU) before each transposed conv,
    at 7×7 and at 14×14; the output is still a (1, 28, 28) image in [-1, 1]."""
    g = models.dcgan_generator(latent_dim=5, width=4, depth=4)
    convs = [(type(m).__name__, m.weight.shape, m.stride) for m in g.modules()
             if isinstance(m, (mg.nn.Conv2d, mg.nn.ConvTranspose2d))]
    assert convs == [("Conv2d", (8, 8, 3, 3), (1, 1)), ("ConvTranspose2d", (8, 4, 4, 4), (2, 2)),
                     ("Conv2d", (4, 4, 3, 3), (1, 1)), ("ConvTranspose2d", (4, 1, 4, 4), (2, 2))]
    assert sum("BatchNorm" in type(m).__name__ for m in g.modules()) == 4
    out = g(mg.randn(3, 5))
    assert out.shape == (3, 1, 28, 28) and np.abs(out.numpy()).max() <= 1
    with pytest.raises(ValueError, match=r"depth must be one of \(2, 4\), got 3"):
        models.dcgan_generator(depth=3)


@pytest.mark.parametrize("field, value, wrong, message", [
    ("d_depth", 3, 4, "d depth must be 2 or 3"), ("g_depth", 4, 3, "g depth must be 2 or 4")])
def test_depth_options_train_the_dcgan_and_are_kept_on_resume(tmp_path, field, value, wrong, message):
    config = Config(model="dcgan", batch_size=4, limit=8, metrics=False, out=str(tmp_path), **{field: value})
    trainer = Trainer(config)
    net = trainer.D if field == "d_depth" else trainer.G
    assert sum(isinstance(m, (mg.nn.Conv2d, mg.nn.ConvTranspose2d)) for m in net.modules()) == value
    (real,) = next(iter(trainer.loader))
    assert all(np.isfinite(v.item()) for v in trainer.train_step(real).values())
    trainer.save(tmp_path / "checkpoint.npz")
    with pytest.raises(TrainingError, match=f"{field}={value}.*{field}=2"):
        Trainer(dataclasses.replace(config, **{field: 2})).load(tmp_path / "checkpoint.npz")
    with pytest.raises(ConfigError, match=message):
        Config(**{field: wrong}).validate()
    with pytest.raises(ConfigError, match=f"{field.replace('_', ' ')} applies to the dcgan only"):
        Config(model="mlp", **{field: value}).validate()


# --- samples from a moving average of G (--ema) ------------------------------------------
def test_ema_keeps_a_moving_average_of_g_and_samples_from_it():
    d = 0.3  # below the ramp's (1 + t)/(10 + t) from t = 3 on, so both branches are checked
    trainer = Trainer(Config(model="dcgan", batch_size=4, limit=8, metrics=False, ema=d))
    expected = {k: np.array(v, np.float64) for k, v in trainer.G.state_dict().items()}  # starts as G
    (real,) = next(iter(trainer.loader))
    for t in range(1, 4):  # the decay ramps up over G's first steps: min(d, (1 + t)/(10 + t))
        trainer.train_step(real)
        decay = min(d, (1 + t) / (10 + t))
        for k, v in trainer.G.state_dict().items():  # weights and batch-norm statistics alike
            # but batch norm's count of forward passes is G's own
            expected[k] = decay * expected[k] + (1 - decay) * v if v.dtype.kind == "f" else v
    average = trainer.G_ema.state_dict()
    assert set(average) == set(expected)
    assert average["1.num_batches_tracked"].dtype == np.int64 and average["1.num_batches_tracked"] == 3
    for k, v in average.items():
        np.testing.assert_allclose(v, expected[k], rtol=1e-5, atol=1e-7, err_msg=k)
    assert not any(p.requires_grad for p in trainer.G_ema.parameters())

    z = trainer.eval_noise[0][:6]
    with mg.no_grad():
        from_average = trainer.G_ema.eval()(mg.tensor(z.astype(np.float32))).numpy()
        from_g = trainer.G.eval()(mg.tensor(z.astype(np.float32))).numpy()
    trainer.G.train()
    np.testing.assert_array_equal(trainer.samples(z), from_average)
    assert np.abs(from_g - from_average).max() > 1e-3  # so the check above can tell them apart
    assert trainer.G.training  # sampling left G training


def test_ema_decay_must_be_below_one():
    with pytest.raises(ConfigError, match=r"ema decay must be in \[0, 1\), got 1.0"):
        Config(ema=1.0).validate()
