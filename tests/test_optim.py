"""Optimisers against their update rules computed by hand, step by step, in float64."""

import re

import numpy as np
import pytest

import minigan as mg
from minigan import optim
from minigan.nn import Parameter

P0 = np.array([0.5, -1.0, 2.0])
# The gradient handed to the optimiser at steps 1, 2 and 3 (set on p.grad directly,
# so these tests depend on the optimiser only).
GRADS = [np.array([0.1, -2.0, 0.0]), np.array([-0.3, -1.0, 0.5]), np.array([0.2, 4.0, -0.5])]


def run(opt_class, n_steps=3, **kwargs):
    """Apply n_steps updates with GRADS; return the parameter after each step."""
    p = Parameter(P0.copy())
    opt = opt_class([p], **kwargs)
    history = []
    for g in GRADS[:n_steps]:
        p.grad = g.copy()
        opt.step()
        history.append(p.data.copy())
    return history


# --- Adam --------------------------------------------------------------------------------
@pytest.mark.parametrize("lr, beta1, beta2, eps", [(0.1, 0.9, 0.999, 1e-8), (0.01, 0.5, 0.9, 0.1)])
def test_adam_first_three_steps_by_hand(lr, beta1, beta2, eps):
    got = run(optim.Adam, lr=lr, betas=(beta1, beta2), eps=eps)
    # The textbook algorithm (Kingma & Ba, Algorithm 1), written out.
    p = P0.copy()
    m = np.zeros(3)
    v = np.zeros(3)
    for t, (g, after) in enumerate(zip(GRADS, got), start=1):
        m = beta1 * m + (1 - beta1) * g
        v = beta2 * v + (1 - beta2) * g**2
        m_hat = m / (1 - beta1**t)  # bias correction: m starts at 0, so early means are too small
        v_hat = v / (1 - beta2**t)
        p = p - lr * m_hat / (np.sqrt(v_hat) + eps)
        np.testing.assert_allclose(after, p, rtol=1e-12, atol=1e-15, err_msg=f"step {t}")
    assert len(got) == 3


def test_adam_first_step_is_about_lr_times_sign_of_gradient():
    # After bias correction m̂ = g and v̂ = g², so step 1 is -lr·g/(|g| + eps):
    # -lr·sign(g) for gradients much larger than eps, and no move where g = 0.
    (after,) = run(optim.Adam, n_steps=1, lr=0.1)
    g = GRADS[0]
    np.testing.assert_allclose(after - P0, -0.1 * g / (np.abs(g) + 1e-8), rtol=1e-12)
    assert after[2] == P0[2]


def test_adam_weight_decay_adds_weight_decay_times_p_to_the_gradient():
    (after,) = run(optim.Adam, n_steps=1, lr=0.1, weight_decay=0.5)
    g = GRADS[0] + 0.5 * P0  # L2 regularisation (AdamW would decay p itself instead)
    np.testing.assert_allclose(after - P0, -0.1 * g / (np.abs(g) + 1e-8), rtol=1e-12)


def test_adam_keeps_float32_parameters_float32():
    p = Parameter(np.ones(3, np.float32))
    opt = optim.Adam([p], lr=0.1)
    p.grad = np.array([1.0, -1.0, 0.5], np.float32)
    opt.step()
    assert p.data.dtype == np.float32
    np.testing.assert_allclose(p.data, [0.9, 1.1, 0.9], rtol=1e-6)


# --- SGD -----------------------------------------------------------------------------------
def test_sgd_without_momentum():
    got = run(optim.SGD, lr=0.1)
    # p ← p - lr·g
    p1 = P0 - 0.1 * GRADS[0]
    p2 = p1 - 0.1 * GRADS[1]
    p3 = p2 - 0.1 * GRADS[2]
    for step, expected in zip(got, [p1, p2, p3]):
        np.testing.assert_allclose(step, expected, rtol=1e-15)


def test_sgd_with_momentum():
    got = run(optim.SGD, lr=0.1, momentum=0.9)
    # v ← μ·v + g (v starts as the first gradient);  p ← p - lr·v
    v1 = GRADS[0]
    p1 = P0 - 0.1 * v1
    v2 = 0.9 * v1 + GRADS[1]
    p2 = p1 - 0.1 * v2
    v3 = 0.9 * v2 + GRADS[2]
    p3 = p2 - 0.1 * v3
    for step, expected in zip(got, [p1, p2, p3]):
        np.testing.assert_allclose(step, expected, rtol=1e-14)


def test_step_skips_parameters_without_grad():
    a, b = Parameter(P0.copy()), Parameter(P0.copy())
    opt = optim.Adam([a, b], lr=0.1)
    a.grad = GRADS[0].copy()
    opt.step()
    np.testing.assert_array_equal(b.data, P0)
    assert not np.array_equal(a.data, P0)


def test_a_parameter_given_twice_is_refused():
    # It would be updated twice per step. (A module lists a shared layer's
    # parameters once: see test_nn.py.)
    a, b = Parameter(P0.copy()), Parameter(P0.copy())
    with pytest.raises(ValueError, match=r"Adam: parameter 2 \(shape \(3,\)\) is parameter 0 again"):
        optim.Adam([a, b, a])


# --- state dicts ----------------------------------------------------------------------------
@pytest.mark.parametrize("make", [
    lambda params: optim.Adam(params, lr=0.05, betas=(0.5, 0.9)),
    lambda params: optim.SGD(params, lr=0.05, momentum=0.9),
], ids=["Adam", "SGD momentum"])
def test_state_dict_round_trip_continues_identically(make):
    p = Parameter(P0.copy())
    opt = make([p])
    for g in GRADS[:2]:
        p.grad = g.copy()
        opt.step()
    saved_param, saved_state = p.data.copy(), opt.state_dict()

    # Continue the original for one more step ...
    p.grad = GRADS[2].copy()
    opt.step()
    # ... and a fresh optimiser, restored from the saved state, for the same step.
    q = Parameter(saved_param.copy())
    restored = make([q])
    restored.load_state_dict(saved_state)
    q.grad = GRADS[2].copy()
    restored.step()
    np.testing.assert_array_equal(q.data, p.data)


def test_state_dict_is_a_copy_of_the_moments():
    p = Parameter(P0.copy())
    opt = optim.Adam([p], lr=0.1)
    p.grad = GRADS[0].copy()
    opt.step()
    saved = opt.state_dict()
    m_before = saved["state"][0]["exp_avg"].copy()
    p.grad = GRADS[1].copy()
    opt.step()
    np.testing.assert_array_equal(saved["state"][0]["exp_avg"], m_before)
    assert saved["state"][0]["step"] == 1


def _adam_state_after_one_step():
    p = Parameter(P0.copy())
    opt = optim.Adam([p], lr=0.1)
    p.grad = GRADS[0].copy()
    opt.step()
    return opt.state_dict()


def test_load_state_dict_rejects_wrong_sizes():
    state = _adam_state_after_one_step()
    with pytest.raises(ValueError, match="state for 1 parameters, this optimiser has 2"):
        optim.Adam([Parameter(P0.copy()), Parameter(P0.copy())]).load_state_dict(state)
    with pytest.raises(ValueError, match="exp_avg"):
        optim.Adam([Parameter(np.zeros(4))]).load_state_dict(state)


# --- bad hyper-parameters --------------------------------------------------------------------------
@pytest.mark.parametrize("kwargs, words", [
    ({"lr": -1e-3}, "lr must be 0 or more and finite, got -0.001"),
    ({"lr": float("nan")}, "lr must be 0 or more and finite, got nan"),  # NaN passed `lr <= 0`: every weight NaN
    ({"lr": float("inf")}, "lr must be 0 or more and finite, got inf"),
    ({"eps": float("nan")}, "eps must be 0 or more, got nan"),
    ({"betas": (1.0, 0.999)}, "betas must be in"),
    ({"betas": (0.9, -0.1)}, "betas must be in"),
    ({"betas": (0.9,)}, r"betas must be in \[0, 1\), two of them \(beta1, beta2\), got \(0.9,\)"),
    ({"betas": 0.5}, "two of them"),
    ({"eps": -1e-8}, "eps must be 0 or more, got -1e-08"),
    ({"weight_decay": -0.1}, "weight_decay must be 0 or more and finite, got -0.1"),
])
def test_adam_rejects_bad_hyper_parameters(kwargs, words):
    with pytest.raises(ValueError, match=words):
        optim.Adam([Parameter(P0.copy())], **kwargs)


def test_an_optimiser_takes_tensors_only():
    net = mg.nn.Sequential(mg.nn.Linear(2, 1))
    for model in (net, net[0]):  # a Sequential listed its layers, a Linear failed on 'not iterable'
        with pytest.raises(TypeError, match=f"Adam: params is a {type(model).__name__}; give an iterable of tensors"):
            optim.Adam(model)
    w = mg.tensor(np.ones((2, 2), np.float32), requires_grad=True)
    with pytest.raises(TypeError, match=r"SGD: params is a Tensor; .*e.g. model.parameters\(\) or \[w\]"):
        optim.SGD(w, lr=0.1)  # list(w) gave its rows, which never get a .grad: nothing trained, silently
    with pytest.raises(TypeError, match="Adam: parameter 1 is a Linear, not a tensor; give the optimiser model.parameters()"):
        optim.Adam([w, net[0]])
    with pytest.raises(TypeError, match=r"SGD: parameter 0 is a dict, not a tensor; .*\(one parameter group only: change its settings through opt.param_groups\[0\]\)"):
        optim.SGD([{"params": net.parameters()}], lr=0.1)


def test_sgd_rejects_bad_lr_and_empty_parameter_lists():
    with pytest.raises(ValueError, match="lr must be 0 or more and finite, got -0.1"):
        optim.SGD([Parameter(P0.copy())], lr=-0.1)
    with pytest.raises(ValueError, match="empty parameter list"):
        optim.SGD([], lr=0.1)
    with pytest.raises(ValueError, match="momentum must be 0 or more, got -0.9"):
        optim.SGD([Parameter(P0.copy())], lr=0.1, momentum=-0.9)
    with pytest.raises(ValueError, match="momentum must be 0 or more, got nan"):
        optim.SGD([Parameter(P0.copy())], lr=0.1, momentum=float("nan"))
    with pytest.raises(ValueError, match="lr must be 0 or more and finite, got nan"):
        optim.SGD([Parameter(P0.copy())], lr=float("nan"))


@pytest.mark.parametrize("make", [lambda ps: optim.SGD(ps, lr=0, momentum=0.9), lambda ps: optim.Adam(ps, lr=0)])
def test_lr_0_leaves_the_weights_as_they_are(make):
    # PyTorch takes lr=0 (e.g. the start of a warm-up); the moments still move
    p = Parameter(P0.copy())
    opt = make([p])
    for _ in range(2):
        p.grad = np.full_like(P0, 0.5)
        opt.step()
    np.testing.assert_array_equal(p.data, P0)
    assert any(np.abs(v).sum() > 0 for s in opt.state_dict()["state"] for k, v in s.items() if k != "step")


# --- param_groups: changing hyper-parameters as training goes ------------------------------------
def test_a_learning_rate_set_in_param_groups_is_used_from_the_next_step():
    p = Parameter(P0.copy())
    opt = optim.SGD([p], lr=0.1)
    (group,) = opt.param_groups
    assert group == {"params": [p], "lr": 0.1, "momentum": 0.0}
    p.grad = GRADS[0].copy()
    opt.step()
    for group in opt.param_groups:  # PyTorch's way to change the learning rate
        group["lr"] = 0.01
    p.grad = GRADS[1].copy()
    opt.step()
    np.testing.assert_allclose(p.data, P0 - 0.1 * GRADS[0] - 0.01 * GRADS[1], rtol=1e-15)
    assert opt.defaults == {"lr": 0.1, "momentum": 0.0}  # what it was made with, as in PyTorch
    # A state dict holds the learning rate in use.
    saved = opt.state_dict()
    assert saved["param_groups"] == [{"lr": 0.01, "momentum": 0.0, "params": [0]}]
    restored = optim.SGD([Parameter(P0.copy())], lr=0.1)
    restored.load_state_dict(saved)
    assert restored.param_groups[0]["lr"] == 0.01 and restored.defaults["lr"] == 0.1


def test_param_groups_zero_grad_and_weight_decay_as_in_pytorch():
    torch = pytest.importorskip("torch")
    p, q = Parameter(P0.copy()), torch.nn.Parameter(torch.tensor(P0))
    opts = optim.Adam([p], lr=0.1, weight_decay=0.05), torch.optim.Adam([q], lr=0.1, weight_decay=0.05)
    for step in range(5):
        if step == 2:
            for opt in opts:
                opt.param_groups[0]["lr"] = 0.02
        if step < 3:
            p.grad, q.grad = GRADS[step].copy(), torch.tensor(GRADS[step])
        else:  # zeros: the moments still move the weights, as PyTorch's do
            for opt in opts:
                opt.zero_grad(set_to_none=False)
        for opt in opts:
            opt.step()
        np.testing.assert_allclose(p.data, q.detach().numpy(), rtol=1e-12, err_msg=f"step {step + 1}")
    for opt in opts:
        opt.zero_grad()  # PyTorch's default: None, and a parameter without a gradient stays
    assert p.grad is None and q.grad is None
    for opt in opts:
        opt.step()
    np.testing.assert_array_equal(p.data, q.detach().numpy())
    ours, theirs = opts[0].state_dict()["param_groups"][0], opts[1].state_dict()["param_groups"][0]
    assert ours == {k: theirs[k] for k in ours}


@pytest.mark.parametrize("edit, error, words", [
    (lambda g: g.update(lr=-0.1), ValueError, "Adam: lr must be 0 or more and finite, got -0.1"),
    (lambda g: g.update(lr="0.1"), TypeError, "Adam: lr must be a number, got '0.1' (a str)"),
    (lambda g: g.update(betas=(0.9, 1.0)), ValueError, "Adam: betas must be in [0, 1)"),
    (lambda g: g.update(learning_rate=0.1), ValueError, "Adam.step: param_groups[0] holds the hyper-parameters "
     "['betas', 'eps', 'learning_rate', 'lr', 'weight_decay'], expected ['betas', 'eps', 'lr', 'weight_decay']"),
], ids=["negative", "string", "beta2 of 1", "misspelt"])
def test_a_bad_value_set_in_param_groups_is_refused_at_the_next_step(edit, error, words):
    p = Parameter(P0.copy())
    opt = optim.Adam([p])
    edit(opt.param_groups[0])
    p.grad = GRADS[0].copy()
    with pytest.raises(error, match=re.escape(words)):
        opt.step()
    np.testing.assert_array_equal(p.data, P0)


@pytest.mark.parametrize("edit, words", [
    (lambda s: s[0].update(step=-1), r"state 'step' of parameter 0 must be a step count, an int of 1 or more, got -1"),
    (lambda s: s[0].update(step=0), "must be a step count"),  # Adam's bias correction divided by 1 - β⁰ = 0
    (lambda s: s[0].update(step=1.5), "must be a step count, an int of 1 or more, got 1.5"),  # loaded, then 2.5, 3.5 ...
    (lambda s: s[0].update(step="3"), "must be a step count"),
    (lambda s: s[0].update(exp_avg=None), r"state 'exp_avg' of parameter 0 must be an array of numbers, got None \(a NoneType\)"),
    (lambda s: s[0].update(exp_avg=np.array(["1", "2", "3"])), "must be an array of numbers"),
    (lambda s: s.__setitem__(0, "x"), "'state' must be a list of one dict per parameter"),
], ids=["negative step", "step 0", "float step", "string step", "None moment", "string moment", "not a dict"])
def test_load_state_dict_rejects_bad_values(edit, words):
    # Each was loaded, then failed at the next step (a ZeroDivisionError in the kernel's
    # launcher) or trained on with a nonsense bias correction.
    state = _adam_state_after_one_step()
    edit(state["state"])
    with pytest.raises(ValueError, match=words):
        optim.Adam([Parameter(P0.copy())]).load_state_dict(state)


def test_load_state_dict_keeps_a_numpy_step_count_as_an_int():
    state = _adam_state_after_one_step()
    state["state"][0]["step"] = np.int64(1)  # as read back from an .npz file
    restored = optim.Adam([Parameter(P0.copy())])
    restored.load_state_dict(state)
    assert type(restored.state[0]["step"]) is int


def test_a_learning_rate_changed_after_steps_is_checked_at_the_next_step():
    p = Parameter(P0.copy())
    opt = optim.Adam([p])
    p.grad = GRADS[0].copy()
    opt.step()
    opt.param_groups[0]["lr"] = float("nan")  # (each step reuses the check of the group until it changes)
    with pytest.raises(ValueError, match="Adam: lr must be 0 or more and finite, got nan"):
        opt.step()


@pytest.mark.parametrize("make", [lambda ps: optim.SGD(ps, lr=0.1), lambda ps: optim.Adam(ps, lr=0.1)])
def test_a_tensor_in_grad_is_refused_not_ignored(make):
    # PyTorch's .grad is a tensor; here it is a raw array. SGD's `p -= lr * g` with a
    # Tensor g made a new tensor and left the weights as they were; Adam's kernel
    # failed on the Tensor's missing astype.
    p = Parameter(P0.copy())
    p.grad = mg.tensor(GRADS[0])
    with pytest.raises(TypeError, match=r"parameter 0's .grad is a Tensor; it must be a raw array like its .data"):
        make([p]).step()
    np.testing.assert_array_equal(p.data, P0)
