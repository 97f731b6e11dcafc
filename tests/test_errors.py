"""Every mistake a learner is likely to make gets a message that says what was
expected and what was found, naming the layer or op. (Checkpoint files: see
test_checkpoint.py; the command line, data folders and flags: test_example_cli.py.)"""

import re
import types
import warnings

import numpy as np
import pytest

import minigan as mg
from minigan import backend, nn, optim
from minigan.gradcheck import gradcheck
from minigan.nn import functional as F
from minigan.tensor import Tensor
from minigan.train import Config, ConfigError, prepare_output, TrainingError


def t(*shape, dtype=np.float32, requires_grad=False):
    return Tensor(np.ones(shape, dtype=dtype), requires_grad)


def raises(exception, message):
    """pytest.raises matching ``message`` literally (it is full of brackets)."""
    return pytest.raises(exception, match=re.escape(message))


# --- shapes, layer by layer ------------------------------------------------------------
@pytest.mark.parametrize(
    "layer, x, message",
    [
        (nn.Linear(4, 3), t(2, 5),
         "Linear(in_features=4, out_features=3, bias=True): expected input of shape (N, 4), got (2, 5)"),
        (nn.Linear(4, 3), t(2, 1, 4),
         "Linear(in_features=4, out_features=3, bias=True): expected input of shape (N, 4), got (2, 1, 4)"),
        (nn.Conv2d(3, 8, 3), t(2, 4, 8, 8),
         "Conv2d(3, 8, kernel_size=(3, 3), stride=(1, 1)): expected input of shape (N, 3, H, W), got (2, 4, 8, 8)"),
        (nn.ConvTranspose2d(3, 2, 4, stride=2, padding=1), t(2, 5, 7, 7),
         "ConvTranspose2d(3, 2, kernel_size=(4, 4), stride=(2, 2), padding=(1, 1)): expected input of shape (N, 3, H, W), got (2, 5, 7, 7)"),
        (nn.BatchNorm1d(4), t(8, 5),
         "BatchNorm1d(4, eps=1e-05, momentum=0.1, affine=True, bias=True, track_running_stats=True): expected input of shape (N, 4) or (N, 4, L), got (8, 5)"),
        (nn.BatchNorm2d(4), t(8, 5, 3, 3),
         "BatchNorm2d(4, eps=1e-05, momentum=0.1, affine=True, bias=True, track_running_stats=True): expected input of shape (N, 4, H, W), got (8, 5, 3, 3)"),
        (nn.Unflatten(1, (1, 28, 28)), t(2, 100),
         "Unflatten(dim=1, unflattened_size=(1, 28, 28)): expected dimension 1 of size 784, got input of shape (2, 100)"),
        (nn.Flatten(), t(5), "flatten: dimension 1 is out of range for a tensor of shape (5,)"),
        (nn.AvgPool2d(2), t(2, 8, 8), "avg_pool2d: expected a 4-D input (N, C, H, W), got shape (2, 8, 8)"),
        (nn.AvgPool2d(4), t(1, 1, 3, 8), "avg_pool2d: kernel_size 4 is larger than the input's 3×8"),
        (nn.Upsample(scale_factor=2), t(2, 8), "upsample: expected a 4-D input (N, C, H, W), got shape (2, 8)"),
        (nn.Upsample(16), t(2, 8), "interpolate: expected a 4-D input (N, C, H, W), got shape (2, 8)"),
        # Inside a Sequential, the message names the layer that got the wrong shape.
        (nn.Sequential(nn.Linear(4, 3), nn.ReLU(), nn.Linear(5, 2)), t(2, 4),
         "Linear(in_features=5, out_features=2, bias=True): expected input of shape (N, 5), got (2, 3)"),
    ],
    ids=lambda v: type(v).__name__ if isinstance(v, nn.Module) else None,
)
def test_layer_shape_mismatch(layer, x, message):
    with raises(ValueError, message):
        layer(x)


# --- shapes, op by op --------------------------------------------------------------------
@pytest.mark.parametrize(
    "call, message",
    [
        (lambda: t(2, 3) + t(4), "add: shapes (2, 3) and (4,) cannot be broadcast together"),
        (lambda: t(2, 3) - t(3, 2), "sub: shapes (2, 3) and (3, 2) cannot be broadcast together"),
        (lambda: t(2, 3) * t(2, 2), "mul: shapes (2, 3) and (2, 2) cannot be broadcast together"),
        (lambda: t(2, 3) / t(5, 1, 2), "div: shapes (2, 3) and (5, 1, 2) cannot be broadcast together"),
        (lambda: t(2, 3) ** t(2), "pow: shapes (2, 3) and (2,) cannot be broadcast together"),
        (lambda: t(2, 3).broadcast_to((3, 3)), "broadcast_to: cannot broadcast shape (2, 3) to (3, 3)"),
        (lambda: t(2, 3) @ t(4, 5),
         "matmul: shapes (2, 3) and (4, 5) do not fit: the last dimension of the first (3) must equal "
         "the second-to-last of the second (4)"),
        (lambda: t(3) @ t(3, 2), "matmul needs tensors with at least 2 dimensions, got shapes (3,) and (3, 2)"),
        (lambda: F.linear(t(2, 5), t(3, 4)), "linear: input of shape (2, 5) does not fit weight of shape (3, 4): expected input (N, 4)"),
        (lambda: F.linear(t(2, 4), t(3, 4), t(4)), "linear: bias of shape (4,), expected (3,)"),
        (lambda: F.conv2d(t(1, 2, 5, 5), t(4, 3, 3, 3)),
         "conv2d: input has 2 channels (shape (1, 2, 5, 5)) but the weight of shape (4, 3, 3, 3) expects 3"),
        (lambda: F.conv2d(t(1, 3, 5, 5), t(4, 3, 3)), "conv2d: expected a 4-D weight, got shape (4, 3, 3)"),
        (lambda: F.conv2d(t(1, 3, 5, 5), t(4, 3, 3, 3), t(3)), "conv2d: bias of shape (3,), expected (4,)"),
        (lambda: F.conv2d(t(1, 3, 5, 5), t(4, 3, 3, 3), stride=(1, 2, 3)), "stride must be an int or a pair of ints, each at least 1, got (1, 2, 3)"),
        (lambda: F.conv_transpose2d(t(1, 2, 5, 5), t(3, 4, 3, 3)),
         "conv_transpose2d: input has 2 channels (shape (1, 2, 5, 5)) but the weight of shape (3, 4, 3, 3) expects 3"),
        (lambda: F.conv_transpose2d(t(1, 3, 5, 5), t(3, 4, 3, 3), t(3)), "conv_transpose2d: bias of shape (3,), expected (4,)"),
        (lambda: F.conv_transpose2d(t(1, 3, 5, 5), t(3, 4, 3, 3), stride=2, output_padding=2),
         "conv_transpose2d: output_padding (2, 2) must be smaller than stride (2, 2)"),
        (lambda: F.conv_transpose2d(t(1, 3, 1, 1), t(3, 4, 1, 1), padding=1),
         "conv_transpose2d: the output size (-1, -1) is not positive (input shape (1, 3, 1, 1))"),
        (lambda: F.conv2d(t(1, 3, 5, 5), t(4, 3, 3, 3), stride=0), "stride must be an int or a pair of ints, each at least 1, got 0"),
        (lambda: F.conv2d(t(1, 3, 5, 5), t(4, 3, 3, 3), padding=(1, -1)),
         "padding must be an int or a pair of ints, each at least 0, got (1, -1)"),
        (lambda: F.conv2d(t(0, 3, 5, 5), t(4, 3, 3, 3)),
         "conv2d: input of shape (0, 3, 5, 5) and weight of shape (4, 3, 3, 3) must not be empty"),
        (lambda: F.conv2d(t(1, 3, 5, 5), t(4, 3, 0, 3)),
         "conv2d: input of shape (1, 3, 5, 5) and weight of shape (4, 3, 0, 3) must not be empty"),
        (lambda: F.conv_transpose2d(t(1, 3, 5, 5), t(3, 4, 3, 3), stride=2, output_size=(13, 11)),
         "conv_transpose2d: output_size (13, 11) is not one of the sizes that stride (2, 2), padding (0, 0) and a "
         "3×3 kernel map back to the input's 5×5: from (11, 11) to (12, 12)"),
        (lambda: F.conv_transpose2d(t(1, 3, 5, 5), t(3, 4, 3, 3), output_size=(8, 8)),
         "conv_transpose2d: output_size (8, 8) is not one of the sizes that stride (1, 1), padding (0, 0) and a "
         "3×3 kernel map back to the input's 5×5: from (7, 7) to (7, 7)"),
        (lambda: F.avg_pool2d(t(1, 1, 4, 4), (2, 0)), "kernel_size must be an int or a pair of ints, each at least 1, got (2, 0)"),
        (lambda: F.batch_norm(t(4, 3), None, None, training=False),
         "batch_norm: eval mode (training=False) normalises with running_mean and running_var, but one of them is None"),
        (lambda: F.batch_norm(t(4, 3), t(2), t(3), training=True),
         "batch_norm: running_mean has shape (2,), expected (3,) for input of shape (4, 3)"),
        (lambda: F.batch_norm(t(1, 3), None, None, training=True),
         "batch_norm: training needs more than one value per channel, got input of shape (1, 3)"),
        (lambda: F.binary_cross_entropy_with_logits(t(4, 1), t(4)),
         "binary_cross_entropy_with_logits: input of shape (4, 1) and target of shape (4,) differ"),
        (lambda: F.binary_cross_entropy(t(4, 1), t(1, 4)), "binary_cross_entropy: input of shape (4, 1) and target of shape (1, 4) differ"),
        (lambda: F.mse_loss(t(2, 3), t(3, 2)), "mse_loss: input of shape (2, 3) and target of shape (3, 2) differ"),
        (lambda: t(2, 3).reshape(4, 2), "cannot reshape a tensor of shape (2, 3) (6 elements) to (4, 2)"),
        (lambda: t(2, 3).permute(0, 0), "permute: dims (0, 0) are not a permutation of the 2 axes of shape (2, 3)"),
        (lambda: t(2, 3).permute(0, 5), "permute: dimension 5 is out of range for a tensor of shape (2, 3)"),
        (lambda: t(2, 3).transpose(0, 2), "transpose: dimension 2 is out of range for a tensor of shape (2, 3)"),
        (lambda: mg.cat([t(2, 3), t(2, 4)], dim=0), "cat: shapes (2, 3) and (2, 4) differ outside dimension 0"),
        (lambda: mg.cat([t(2, 3), t(2, 3)], dim=2), "cat: dimension 2 is out of range for a tensor of shape (2, 3)"),
        (lambda: t(2, 3).flatten(0, 2), "flatten: dimension 2 is out of range for a tensor of shape (2, 3)"),
        (lambda: t(2, 3).sum(2), "axis 2 is out of range for a tensor with 2 dimensions"),
        (lambda: t(2, 3)[5], "index 5 is out of bounds for axis 0 with size 2"),
        (lambda: F.avg_pool2d(t(1, 1, 4, 4), 2, stride=1),
         "avg_pool2d supports stride equal to kernel_size only, got kernel_size=2, stride=1"),
        (lambda: F.interpolate(t(1, 1, 2, 2), scale_factor=1.5), "upsample: scale_factor must be a whole number of at least 1, got 1.5"),
        (lambda: F.dropout(t(2, 3), p=1.5), "dropout: the probability p must be in [0, 1], got 1.5"),
        (lambda: nn.Dropout(-0.1), "Dropout: the probability p must be in [0, 1], got -0.1"),
    ],
)
def test_op_shape_mismatch(call, message):
    with pytest.raises((ValueError, IndexError)) as error:
        call()
    assert message in str(error.value)


# --- the kernel and the input of a convolution --------------------------------------------
def test_kernel_larger_than_the_padded_input():
    with raises(ValueError, "conv2d: kernel size 5 is larger than the padded input (3 + 2·0) along H "
                            "(input shape (1, 1, 3, 8), weight shape (2, 1, 5, 3))"):
        F.conv2d(t(1, 1, 3, 8), t(2, 1, 5, 3))
    with raises(ValueError, "conv2d: kernel size 4 is larger than the padded input (1 + 2·1) along W"):
        nn.Conv2d(1, 2, 4, padding=1)(t(1, 1, 6, 1))


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda: F.conv2d(t(3, 8, 8), t(4, 3, 3, 3)), "conv2d: expected a 4-D input (N, C, H, W), got shape (3, 8, 8)"),
        (lambda: F.conv_transpose2d(t(2, 3, 4, 4, 1), t(3, 4, 3, 3)),
         "conv_transpose2d: expected a 4-D input (N, C, H, W), got shape (2, 3, 4, 4, 1)"),
        (lambda: F.batch_norm(t(2, 3, 4, 4, 1), None, None, training=True),
         "batch_norm: expected a 2-D (N, C), 3-D (N, C, L) or 4-D (N, C, H, W) input, got shape (2, 3, 4, 4, 1)"),
        (lambda: nn.Conv2d(3, 4, 3)(t(3, 8, 8)), "Conv2d(3, 4, kernel_size=(3, 3), stride=(1, 1)): expected input of shape (N, 3, H, W), got (3, 8, 8)"),
        (lambda: nn.ConvTranspose2d(3, 4, 3)(t(2, 3)), "ConvTranspose2d(3, 4, kernel_size=(3, 3), stride=(1, 1)): expected input of shape (N, 3, H, W), got (2, 3)"),
        (lambda: nn.BatchNorm2d(3)(t(4, 3)), "BatchNorm2d(3, eps=1e-05, momentum=0.1, affine=True, bias=True, track_running_stats=True): expected input of shape (N, 3, H, W), got (4, 3)"),
    ],
    ids=["conv2d", "conv_transpose2d", "batch_norm", "Conv2d", "ConvTranspose2d", "BatchNorm2d"],
)
def test_input_that_is_not_4d(call, message):
    with raises(ValueError, message):
        call()


# --- dtypes and devices -----------------------------------------------------------------
def test_wrong_dtype():
    with raises(TypeError, "Linear: expected tensors of one dtype, got float64 and float32; convert one of them"):
        nn.Linear(4, 3)(t(2, 4, dtype=np.float64))
    with raises(TypeError, "Add: expected tensors of one dtype, got float32 and float64"):
        t(2) + t(2, dtype=np.float64)
    with raises(TypeError, "only floating-point tensors can require gradients, got dtype int64"):
        mg.tensor([1, 2], requires_grad=True)
    with raises(TypeError, "only floating-point tensors can require gradients, got dtype int64"):
        mg.tensor([1, 2]).requires_grad_()
    with raises(TypeError, "only floating-point tensors can require gradients, got dtype int32"):
        nn.Parameter(np.array([1, 2], np.int32))
    with raises(TypeError, "only floating-point tensors can require gradients, got dtype int64"):
        mg.Tensor(np.array([1, 2]), requires_grad=True)  # (backward said no input required grad)
    with raises(TypeError, "gradcheck: input 0 is float32; finite differences need float64 inputs"):
        gradcheck(lambda x: x * 2, t(3, requires_grad=True))
    with raises(TypeError, "leaky_relu: expected a floating-point tensor, got int64"):
        F.leaky_relu(mg.tensor([1, -2]), 0.5)  # the slope would be rounded to 0
    with raises(TypeError, "batch_norm: expected a floating-point input, got dtype int64"):
        F.batch_norm(mg.tensor(np.ones((2, 3), np.int64)), None, None, training=True)  # gave all 0s
    half = mg.tensor(np.ones((2, 3), np.float16))
    for op in (lambda: half.relu(), lambda: F.leaky_relu(half, 0.2)):  # failed inside Numba's compiler
        with raises(TypeError, "the kernels take float32 or float64 arrays, got an array of dtype float16"):
            op()
    np.testing.assert_array_equal(mg.tensor([1, -2]).relu().numpy(), [1, 0])  # integers, as in PyTorch


def test_binary_cross_entropy_of_values_that_are_not_probabilities():
    # Logits passed where probabilities belong gave a NaN loss (log of 1 - p < 0).
    logits = mg.tensor(np.array([[-2.0], [0.5], [3.0]], np.float32))
    with raises(ValueError, "binary_cross_entropy: input must be probabilities in [0, 1], got values from -2.0 "
                            "to 3.0; for logits (before the sigmoid) use binary_cross_entropy_with_logits"):
        F.binary_cross_entropy(logits, t(3, 1))
    with raises(ValueError, "binary_cross_entropy: the input holds NaN (has training diverged?)"):
        F.binary_cross_entropy(mg.tensor(np.array([[0.5], [np.nan], [0.2]], np.float32)), t(3, 1))


class FakeGpuArray:
    """Holds a NumPy array but is not one, as a CuPy array is not. With CuPy's array
    type replaced by it (the ``fake_gpu`` fixture), it stands in for GPU memory on a
    machine without a GPU."""

    def __init__(self, array):
        self.array = array
        self.shape, self.ndim, self.dtype, self.size = array.shape, array.ndim, array.dtype, array.size

    def get(self):  # CuPy's copy back to the host
        return self.array


@pytest.fixture
def fake_gpu(monkeypatch):
    """minigan.backend sees a CuPy whose arrays are FakeGpuArrays."""
    fake_cupy = types.SimpleNamespace(ndarray=FakeGpuArray, asarray=lambda a: FakeGpuArray(np.asarray(a)))
    monkeypatch.setattr(backend, "_cupy", fake_cupy)


def test_moving_a_tensor_keeps_it_in_the_graph(fake_gpu):
    # y = (3w) moved to the GPU and back: dy/dw = 3. .to() made a new leaf, so the
    # gradient stopped at the copy and w.grad stayed None.
    w = mg.tensor([1.0, 2.0], requires_grad=True)
    on_gpu = (w * 3).to("cuda")
    assert isinstance(on_gpu.data, FakeGpuArray) and not on_gpu.is_leaf
    y = on_gpu.to("cpu")
    (y * y).sum().backward()  # dL/dw = 2y·3 = 18w
    np.testing.assert_array_equal(w.grad, [18.0, 36.0])
    assert w.to("cpu") is w  # already there: the tensor itself, as in PyTorch


def test_tensors_on_different_devices(fake_gpu):
    on_gpu = Tensor(FakeGpuArray(np.ones((2, 4), np.float32)))
    assert on_gpu.device == "cuda"
    with raises(RuntimeError, "Add: expected all tensors on one device, got cpu and cuda; move them with .to(device)"):
        t(2, 4) + on_gpu
    with raises(RuntimeError, "Linear: expected all tensors on one device, got cuda and cpu"):
        nn.Linear(4, 3)(on_gpu)


def test_a_tensor_made_from_what_is_not_numbers():
    # Tensor(list) is float32, as torch.Tensor(list); None would be NaN, a string a number.
    np.testing.assert_array_equal((Tensor([1, 2]) + 1).numpy(), np.array([2, 3], np.float32))
    with raises(TypeError, "Tensor(): expected a number, a list of numbers or an array of them"):
        Tensor(None)
    with raises(TypeError, "Tensor(): expected a number, a list of numbers or an array of them"):
        Tensor(["1", "2"])


def test_mean_of_an_integer_tensor():
    with raises(TypeError, "mean() needs a floating-point tensor, got dtype int64; convert it first"):
        mg.tensor([1, 2]).mean()


def test_mean_of_no_values_is_nan_as_in_pytorch():
    assert np.isnan(mg.zeros(0, 3).mean().item())
    assert np.isnan(mg.zeros(0, 3).mean(0).numpy()).all()


def test_log_softmax_of_a_dim_the_tensor_lacks():
    with raises(ValueError, "log_softmax: dim 1 is out of range for a tensor of shape (3,)"):
        F.log_softmax(mg.tensor([1.0, 2.0, 3.0]), 1)


def test_log_softmax_needs_its_dim_and_losses_take_reduction_by_name():
    # Without dim PyTorch guesses one from the rank (dim 0 for a 3-D input): other values, silently.
    with raises(TypeError, "log_softmax() missing 1 required positional argument: 'dim'"):
        F.log_softmax(mg.zeros(2, 2, 2))
    with raises(TypeError, "mse_loss() takes 2 positional arguments but 3 were given"):
        F.mse_loss(mg.zeros(2), mg.zeros(2), mg.ones(2))  # PyTorch's third place is a weight


def test_len_of_a_0d_tensor():
    with raises(TypeError, "len() of a 0-d tensor"):
        len(mg.tensor(1.0))


def test_batch_norm_without_a_momentum():
    with raises(ValueError, "BatchNorm2d: momentum must be a number in [0, 1], got None (PyTorch's "
                            "momentum=None, a cumulative average, is not supported)"):
        nn.BatchNorm2d(4, momentum=None)


# --- backward ------------------------------------------------------------------------------
def test_backward_on_a_non_scalar_needs_a_gradient():
    y = t(2, 3, requires_grad=True) * 2
    with raises(RuntimeError, "backward() on a tensor of shape (2, 3) needs a gradient argument: an implicit "
                              "gradient exists only for scalar outputs"):
        y.backward()
    with raises(RuntimeError, "gradient of shape (3, 2) given for a tensor of shape (2, 3)"):
        y.backward(np.ones((3, 2), np.float32))


def test_backward_with_a_gradient_of_another_dtype_or_device(fake_gpu):
    y = t(2, requires_grad=True) * 2
    with raises(TypeError, "gradient of dtype float64 given for a tensor of dtype float32; "
                           "give it the tensor's dtype (e.g. mg.tensor(g, dtype='float32'))"):
        y.backward(t(2, dtype=np.float64))
    with raises(RuntimeError, "gradient on cuda given for a tensor on cpu; move it with .to(device)"):
        y.backward(Tensor(FakeGpuArray(np.ones(2, np.float32))))
    # A raw array of another device is not copied over silently either.
    with raises(RuntimeError, "an array on cuda was given for a tensor on cpu; move it first, e.g. "
                              "mg.tensor(value, device='cpu')"):
        y.backward(FakeGpuArray(np.ones(2, np.float32)))


def test_a_constant_array_on_another_device(fake_gpu):
    with raises(RuntimeError, "an array on cuda was given for a tensor on cpu"):
        t(2) + FakeGpuArray(np.ones(2, np.float32))
    with raises(RuntimeError, "an array on cuda was given for a tensor on cpu"):
        FakeGpuArray(np.ones(2, np.float32)) - t(2)


def test_backward_twice_through_a_freed_graph():
    x = t(3, requires_grad=True)
    y = (x.exp() * 2).sum()
    y.backward()
    with raises(RuntimeError, "backward through the graph a second time: the saved values of Sum were freed "
                              "by the first backward. Pass retain_graph=True"):
        y.backward()


def test_backward_after_an_optimiser_step_changed_a_weight_it_needs():
    # A GAN mistake: G's loss goes through D, but D is stepped before G's backward.
    # Linear's backward would multiply by D's new weight: refused, as in PyTorch.
    mg.manual_seed(0)
    G, D = nn.Linear(2, 3), nn.Linear(3, 1)
    opt_d = optim.SGD(D.parameters(), lr=0.1)
    fake = G(mg.randn(4, 2))
    loss_d, loss_g = D(fake.detach()).mean(), -D(fake).mean()
    loss_d.backward()
    opt_d.step()
    with raises(RuntimeError, "Linear: input 1 (shape (1, 3)) was changed in place after the forward pass that used "
                              "it (e.g. by an optimiser step), so its gradient would be computed from the new values"):
        loss_g.backward()
    # In the right order (or with a fresh forward pass) it runs.
    (-D(G(mg.randn(4, 2))).mean()).backward()
    assert G.weight.grad is not None


def test_backward_on_a_tensor_without_grad():
    with raises(RuntimeError, "backward() on a tensor that does not require grad"):
        t(3).sum().backward()


def test_detect_anomaly_names_the_op_whose_gradient_went_bad():
    x = mg.tensor(np.array([0.0, 1.0]), requires_grad=True)
    with np.errstate(all="ignore"):  # 0 ** -0.5 = inf is the point of this test
        with mg.detect_anomaly(), raises(FloatingPointError, "detect_anomaly: Pow.backward returned infinite values "
                                                             "(gradient of shape (2,)); this is the first op whose gradient went bad"):
            x.sqrt().sum().backward()
        # Mul passes a finite gradient (0) on; Pow's 0 · ∞ is the first NaN.
        with mg.detect_anomaly(), raises(FloatingPointError, "detect_anomaly: Pow.backward returned NaN values"):
            (x.sqrt() * 0).sum().backward()
        # Off by default: the NaN simply arrives in .grad.
        (x.sqrt() * 0).sum().backward()
    assert np.isnan(x.grad[0])


# --- state dicts ---------------------------------------------------------------------------
def test_load_state_dict_missing_unexpected_and_misshaped_entries():
    net = nn.Sequential(nn.Linear(4, 3), nn.BatchNorm1d(3))
    state = net.state_dict()
    del state["1.running_var"]
    state["2.weight"] = np.ones(3, np.float32)
    state["0.bias"] = np.ones(4, np.float32)
    with raises(RuntimeError, "load_state_dict for Sequential failed: missing keys: 1.running_var; "
                              "unexpected keys: 2.weight; 0.bias: shape (4,) in the state dict, (3,) in the model"):
        net.load_state_dict(state)


def test_optimizer_load_state_dict_that_does_not_fit():
    net = nn.Linear(4, 3)
    adam = optim.Adam(net.parameters())
    with raises(ValueError, "Adam.load_state_dict: state for 1 parameters, this optimiser has 2"):
        adam.load_state_dict({"param_groups": [{}], "state": [{}]})
    with raises(ValueError, "Adam.load_state_dict: state 'exp_avg' of parameter 1 has shape (4,), the parameter (3,)"):
        adam.load_state_dict({"param_groups": [{}], "state": [{}, {"exp_avg": np.zeros(4), "exp_avg_sq": np.zeros(4), "step": 1}]})
    # Each of these was loaded and failed later, at the next step (a KeyError), or not at all.
    sgd = optim.SGD(net.parameters(), lr=0.1, momentum=0.9)
    with raises(ValueError, "Adam.load_state_dict: hyper-parameters ['lr', 'momentum'] in the state dict, "
                            "['betas', 'eps', 'lr', 'weight_decay'] in this Adam"):
        adam.load_state_dict(sgd.state_dict())
    with raises(ValueError, "Adam.load_state_dict: parameter 1's state holds ['exp_avg'], expected "
                            "['exp_avg', 'exp_avg_sq', 'step'] (or nothing, before its first step)"):
        adam.load_state_dict({"param_groups": [{}], "state": [{}, {"exp_avg": np.zeros(3)}]})
    with raises(ValueError, "Adam: lr must be 0 or more and finite, got -1"):
        adam.load_state_dict({"param_groups": [{"lr": -1}], "state": [{}, {}]})
    with raises(ValueError, "Adam.load_state_dict: expected an optimiser's state_dict(), a dict of 'state' and "
                            "'param_groups', got a dict of ['state']"):
        adam.load_state_dict({"state": [{}, {}]})
    with raises(ValueError, "Adam.load_state_dict: 'param_groups' must be a list of one dict (one parameter group, "
                            "as this optimiser has), got [{}, {}]"):
        adam.load_state_dict({"state": [{}, {}], "param_groups": [{}, {}]})
    with raises(TypeError, "Adam: lr must be a number, got '0.1'"):  # '<' not supported between ...
        adam.load_state_dict({"param_groups": [{"lr": "0.1"}], "state": [{}, {}]})
    with raises(TypeError, "SGD: momentum must be a number, got '0.9'"):
        optim.SGD(net.parameters(), lr=0.1, momentum="0.9")
    with raises(ValueError, "Adam: betas must be in [0, 1), two of them (beta1, beta2), got ('0.9', 0.999)"):
        optim.Adam(net.parameters(), betas=("0.9", 0.999))
    assert adam.param_groups[0]["lr"] == 1e-3  # nothing refused was loaded


# --- modules: initialisers, containers, flags -------------------------------------------------
def test_an_initialiser_given_the_array_of_a_tensor():
    lin = nn.Linear(2, 2)
    # PyTorch's DCGAN tutorial writes m.weight.data, a tensor in PyTorch; here it is the
    # raw array, and this failed with "memoryview: invalid slice key".
    with raises(TypeError, "nn.init.normal_: expected a Tensor, got a ndarray; pass the tensor (m.weight), "
                           "not its array m.weight.data"):
        nn.init.normal_(lin.weight.data, 0.0, 0.02)
    with raises(TypeError, "nn.init.zeros_: expected a Tensor, got a ndarray; pass the tensor (m.weight)"):
        nn.init.zeros_(lin.bias.data)
    with raises(TypeError, "nn.init.constant_: expected a Tensor, got a list"):
        nn.init.constant_([1.0, 2.0], 0)
    with raises(TypeError, "nn.init.constant_: val must be a number, got '0' (a str)"):
        nn.init.constant_(lin.bias, "0")


def test_requires_grad_takes_true_or_false():
    lin = nn.Linear(2, 2)
    for set_flag in (lin.weight.requires_grad_, lin.requires_grad_):
        with raises(TypeError, "requires_grad_(): requires_grad must be True or False, got 'no'"):
            set_flag("no")  # was stored as it was: a string, and true
    assert all(p.requires_grad is True for p in lin.parameters())


def test_module_containers_and_names():
    layers = nn.ModuleList([nn.Linear(2, 2)])
    with raises(IndexError, "ModuleList: index 1 is out of range for 1 modules"):
        layers[1]
    with raises(IndexError, "Sequential: index -3 is out of range for 2 modules"):
        nn.Sequential(nn.ReLU(), nn.Tanh())[-3]
    with raises(TypeError, "ModuleList: <function relu"):
        layers.append(F.relu)
    with raises(TypeError, "(a function) is not a Module; a function such as F.relu has a module twin, e.g. nn.ReLU()"):
        nn.ModuleList([nn.Linear(2, 2), F.relu])
    with raises(TypeError, "ModuleList.extend: expected an iterable of modules, got a Linear"):
        layers.extend(nn.Linear(2, 2))
    with raises(KeyError, "add_module: the name must be non-empty and without '.', got 'a.b'"):
        layers.add_module("a.b", nn.ReLU())  # state_dict's "a.b.weight" could not be split again
    with raises(KeyError, "add_module: the name must be non-empty and without '.', got ''"):
        layers.add_module("", nn.ReLU())
    with raises(KeyError, "add_module: Linear already has an attribute 'weight'"):
        nn.Linear(2, 2).add_module("weight", nn.ReLU())
    with raises(TypeError, "add_module: the name must be a string, got 1 (a int)"):
        layers.add_module(1, nn.ReLU())
    assert len(layers) == 1


# --- training settings ------------------------------------------------------------------------
@pytest.mark.parametrize(
    "settings, message",
    [
        (dict(epochs=-1), "epochs must be a positive integer, got -1"),
        (dict(batch_size=0), "batch size must be an integer of at least 2 (batch norm needs 2), got 0"),
        (dict(model="resnet"), "unknown model 'resnet' (expected one of: mlp, dcgan)"),
        (dict(lr=0.0), "learning rate must be positive, got 0.0"),
        (dict(seed=-3), "seed must be a non-negative integer, got -3"),
        (dict(label_smoothing=1.5), "label smoothing target must be in (0, 1], got 1.5"),
        (dict(limit=4, batch_size=8), "limit must be at least the batch size (8), got 4"),
        (dict(device="tpu"), "unknown device 'tpu': expected one of 'cpu', 'cuda' or 'auto'"),
        (dict(epochs=0, batch_size=1), "epochs must be a positive integer, got 0; batch size must be"),
        # (a TypeError from the comparison: '>' not supported between 'str' and 'int')
        (dict(lr="1e-3"), "lr must be a number, got '1e-3'"),
        (dict(batch_size="64", limit=100), "batch size must be an integer of at least 2 (batch norm needs 2), got 64"),
        (dict(beta1=None, ema="0.9"), "beta1 must be a number, got None; ema must be a number, got '0.9'"),
        (dict(gp_weight=float("nan")), "gp weight must be 0 or more, and finite, got nan"),
        # (True would pass as 1, and a NumPy integer could not be written into a checkpoint)
        (dict(latent_dim=True), "latent dim must be a positive integer, got True"),
        (dict(d_steps=np.int64(2)), "d steps must be an integer of at least 1, got 2"),
    ],
)
def test_bad_settings(settings, message):
    with raises(ConfigError, message):
        Config(**settings).validate()


def test_output_folder_that_cannot_be_written(tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    with raises(TrainingError, f"cannot write to the output folder '{blocker / 'run'}': Not a directory"):
        prepare_output(str(blocker / "run"), "mlp")
    with raises(TrainingError, f"cannot write to the output folder '{blocker}': it is a file"):
        prepare_output(str(blocker), "mlp")


def test_conv_layer_kernel_size_that_is_not_a_pair():
    with raises(ValueError, "kernel_size must be an int or a pair of ints, each at least 1, got (3, 3, 3)"):
        nn.Conv2d(1, 2, (3, 3, 3))
    with raises(ValueError, "kernel_size must be an int or a pair of ints, each at least 1, got (3,)"):
        nn.ConvTranspose2d(1, 2, (3,))


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda: nn.Linear(4, 3)(np.ones((2, 4), np.float32)), "Linear: input 0 is a ndarray, expected a Tensor"),
        (lambda: t(2, 3) @ np.ones((3, 4), np.float32), "MatMul: input 1 is a ndarray, expected a Tensor"),
        (lambda: mg.cat([t(2, 3), np.ones((2, 3), np.float32)]), "Concat: input 1 is a ndarray, expected a Tensor"),
        (lambda: F.leaky_relu(np.ones(3, np.float32)), "LeakyReLU: input 0 is a ndarray, expected a Tensor"),
        (lambda: F.binary_cross_entropy(t(2) * 0.5, np.ones(2, np.float32)),
         "binary_cross_entropy: target must be a Tensor, got a ndarray (mg.tensor(...) makes one)"),
        (lambda: F.mse_loss(t(2), [1.0, 0.0]), "mse_loss: target must be a Tensor, got a list"),  # was: no .shape
    ],
)
def test_an_array_where_a_tensor_belongs(call, message):
    # (the check that all tensors share one device used to say "got cpu and cpu")
    with raises(TypeError, message):
        call()


NOT_NUMBERS = "expected a number, a list of numbers or an array of them (bool, integer or floating point), got"


@pytest.mark.parametrize("value", [None, "2", [1.0, None]])
def test_a_constant_that_is_not_a_number(value):
    # None became NaN, "2" a string array, silently
    for operand in (t(2), mg.tensor([1, 2])):
        with raises(TypeError, NOT_NUMBERS):
            operand + value
        with raises(TypeError, NOT_NUMBERS):
            operand * value


@pytest.mark.parametrize("data", [None, "abc", np.array(["1", "2"]), np.array([1, None], dtype=object)])
def test_a_tensor_of_things_that_are_not_numbers(data):
    for dtype in (None, "float32"):  # checked before the cast: float32 of None is NaN, of "1" is 1
        with raises(TypeError, "mg.tensor(): " + NOT_NUMBERS):
            mg.tensor(data, dtype=dtype)


def test_flatten_with_start_after_end():
    with raises(ValueError, "flatten: start_dim 2 comes after end_dim 1 (shape (2, 3, 4))"):
        t(2, 3, 4).flatten(2, 1)  # was a tensor of shape (2, 3, 1, 4)
    with raises(ValueError, "flatten: start_dim 2 comes after end_dim -2 (shape (2, 3, 4))"):
        t(2, 3, 4).flatten(2, -2)  # the dims as given


def test_unflatten_of_a_dimension_the_input_lacks():
    with raises(ValueError, "Unflatten(dim=1, unflattened_size=(2, 3)): dimension 1 is out of range for a tensor of shape (6,)"):
        nn.Unflatten(1, (2, 3))(t(6))  # split dimension 0 instead


def test_iterating_over_a_0d_tensor():
    with raises(TypeError, "iteration over a 0-d tensor"):
        list(mg.tensor(1.0))  # was []
    assert [r.shape for r in t(2, 3)] == [(3,), (3,)]


def test_cat_of_a_tensor_or_of_nothing():
    with raises(TypeError, "cat: expected a list of tensors, got a Tensor of shape (2, 3)"):
        mg.cat(t(2, 3))  # joined its rows into shape (6,)
    with raises(ValueError, "cat: expected a non-empty list of tensors, got an empty one"):
        mg.cat([])


def test_matmul_batch_dimensions_that_do_not_broadcast():
    with raises(ValueError, "matmul: shapes (2, 2, 3) and (3, 3, 4) do not fit: their batch dimensions (2,) and (3,)"):
        t(2, 2, 3) @ t(3, 3, 4)


@pytest.mark.parametrize("make", [lambda p: optim.SGD([p], lr=0.1), lambda p: optim.Adam([p])])
def test_optimiser_step_with_a_gradient_of_another_shape(make):
    w = t(3, requires_grad=True)
    w.grad = np.ones(1, np.float32)  # SGD broadcast it; Adam's kernel read memory past its end
    with raises(ValueError, "step: parameter 0 (shape (3,)) has a .grad of shape (1,); a gradient has its parameter's shape"):
        make(w).step()
    np.testing.assert_array_equal(w.numpy(), np.ones(3))


def test_grad_with_fewer_grad_outputs_than_outputs():
    w = t(3, requires_grad=True)
    with raises(ValueError, "grad(): 2 outputs but 1 grad_outputs; give one per output"):
        mg.grad([(w * 2).sum(), (w * 3).sum()], w, grad_outputs=[mg.tensor(1.0)])  # gave 2s, not 5s
    with raises(TypeError, "grad(): input 0 is a ndarray, expected a Tensor"):
        mg.grad((w * 2).sum(), [np.ones(3)])


@pytest.mark.parametrize("bias, dtype", [(np.array([1, None, 2], dtype=object), "object"), (np.array(["a", "b", "c"]), "<U1"),
                                         (np.ones(3, np.complex64), "complex64")])
def test_load_state_dict_of_values_that_are_not_numbers(bias, dtype):
    layer = nn.Linear(2, 3)
    before = layer.weight.numpy()
    with raises(RuntimeError, f"bias: values of dtype {dtype} in the state dict, numbers (float32) in the model"):
        layer.load_state_dict({"weight": np.zeros((3, 2)), "bias": bias})
    np.testing.assert_array_equal(layer.weight.numpy(), before)  # nothing loaded, not the entries before it


def test_load_state_dict_of_something_that_is_not_a_dict():
    with raises(TypeError, "load_state_dict for Linear: expected a dict of name -> array (e.g. another model's state_dict()), got a Linear"):
        nn.Linear(2, 3).load_state_dict(nn.Linear(2, 3))


# --- arguments of the wrong kind ---------------------------------------------------------------
@pytest.mark.parametrize(
    "call, error, message",
    [
        # Each failed in NumPy or Python, naming neither the layer nor the argument
        # ("'float' object cannot be interpreted as an integer", "negative dimensions are
        # not allowed"), or not at all: Linear(0, 3) and eps=-1 gave NaN later.
        (lambda: nn.Linear(2.5, 3), ValueError, "Linear: in_features must be an int of at least 1, got 2.5"),
        (lambda: nn.Linear(4, -1), ValueError, "Linear: out_features must be an int of at least 1, got -1"),
        (lambda: nn.Linear(4, True), ValueError, "Linear: out_features must be an int of at least 1, got True"),
        (lambda: nn.Conv2d(0, 8, 3), ValueError, "Conv2d: in_channels must be an int of at least 1, got 0"),
        (lambda: nn.ConvTranspose2d(3, "8", 3), ValueError, "ConvTranspose2d: out_channels must be an int of at least 1, got '8'"),
        (lambda: nn.BatchNorm2d(3.5), ValueError, "BatchNorm2d: num_features must be an int of at least 1, got 3.5"),
        (lambda: nn.BatchNorm1d(4, eps=-1e-5), ValueError, "BatchNorm1d: eps must be positive, got -1e-05"),
        (lambda: nn.BatchNorm1d(4, eps="1e-5"), TypeError, "BatchNorm1d: eps must be a number, got '1e-5' (a str)"),
        (lambda: nn.BatchNorm2d(4, momentum="0.1"), TypeError, "BatchNorm2d: momentum must be a number, got '0.1' (a str)"),
        (lambda: nn.Unflatten(1, (2, 3.0)), ValueError, "Unflatten: unflattened_size[1] must be an int of at least 1, got 3.0"),
        (lambda: nn.Dropout("0.5"), TypeError, "Dropout: p must be a number, got '0.5' (a str)"),
        (lambda: F.dropout(t(2, 3), "0.5"), TypeError, "dropout: p must be a number, got '0.5' (a str)"),
        (lambda: nn.LeakyReLU("0.2")(t(2, 3)), TypeError, "leaky_relu: negative_slope must be a number, got '0.2' (a str)"),
        (lambda: t(2, 3).clamp(min="0"), TypeError, "clamp: min must be a number, got '0' (a str)"),
        (lambda: nn.Flatten(1.5)(t(2, 3)), TypeError, "flatten: dimensions are ints, got 1.5 (a float)"),
        (lambda: t(2, 3).transpose(0, None), TypeError, "transpose: dimensions are ints, got None (a NoneType)"),
        (lambda: t(2, 3).sum(1.0), TypeError, "dim must be an int or a tuple of ints, got 1.0 (a float)"),
        (lambda: t(2, 3).sum((0, -2)), ValueError, "dim (0, -2) names an axis twice (of a tensor with 2 dimensions)"),
        (lambda: t(2, 3).mean((1, 1)), ValueError, "dim (1, 1) names an axis twice"),
        # A convolution layer's stride and padding were checked at its first forward.
        (lambda: nn.Conv2d(1, 2, 3, stride=0), ValueError, "Conv2d: stride must be an int or a pair of ints, each at least 1, got 0"),
        (lambda: nn.Conv2d(1, 2, 3, padding=(1, -1)), ValueError, "Conv2d: padding must be an int or a pair of ints, each at least 0, got (1, -1)"),
        (lambda: nn.ConvTranspose2d(1, 2, 4, stride=2, output_padding=2), ValueError,
         "ConvTranspose2d: output_padding (2, 2) must be smaller than stride (2, 2)"),
        # PyTorch's positions: a dilation or groups was taken for the bias.
        (lambda: nn.Conv2d(3, 4, 3, 1, 1, 2), NotImplementedError, "Conv2d: dilation 2 is not supported (only 1)"),
        (lambda: nn.ConvTranspose2d(4, 4, 3, 2, 1, 1, 2), NotImplementedError,
         "ConvTranspose2d: groups=2 is not supported (only 1: every input channel feeds every output channel)"),
        (lambda: F.conv2d(t(1, 3, 5, 5), t(4, 3, 3, 3), None, 1, 0, (1, 2)), NotImplementedError,
         "conv2d: dilation (1, 2) is not supported (only 1)"),
        (lambda: F.conv_transpose2d(t(1, 3, 5, 5), t(3, 4, 3, 3), None, 1, 0, 0, 1, 2), NotImplementedError,
         "conv_transpose2d: dilation 2 is not supported (only 1)"),
        (lambda: nn.AvgPool2d(2, stride=1), ValueError, "AvgPool2d supports stride equal to kernel_size only, got kernel_size=2, stride=1"),
        (lambda: nn.Upsample(scale_factor="2"), ValueError, "Upsample: scale_factor must be a whole number of at least 1, got '2'"),
        (lambda: nn.Upsample(scale_factor=float("inf")), ValueError, "Upsample: scale_factor must be a whole number of at least 1, got inf"),
        (lambda: nn.Upsample((28, 0)), ValueError, "Upsample: size must be an int or a pair of ints, each at least 1, got (28, 0)"),
        (lambda: nn.AvgPool2d(0), ValueError, "AvgPool2d: kernel_size must be an int or a pair of ints, each at least 1, got 0"),
        # Making tensors: NumPy's "'str' object cannot be interpreted as an integer" and
        # "negative dimensions are not allowed"; an int8 randn was silently all 0 and ±1,
        # complex tensors and integer leaves that require gradients were made.
        (lambda: mg.zeros("a"), TypeError, "mg.zeros(): the size must be ints, got ('a',)"),
        (lambda: mg.ones(2, 2.5), TypeError, "mg.ones(): the size must be ints, got (2, 2.5)"),
        (lambda: mg.randn((2, -1)), ValueError, "mg.randn(): the size must not be negative, got (2, -1)"),
        (lambda: mg.randn(2, dtype="int8"), TypeError, "mg.randn(): dtype must be a floating-point type, e.g. 'float32' or 'float64', got 'int8'"),
        (lambda: mg.rand(2, dtype=bool), TypeError, "mg.rand(): dtype must be a floating-point type"),
        (lambda: mg.zeros(2, dtype="complex64"), TypeError, "mg.zeros(): dtype must be a number type (bool, integer or floating point)"),
        (lambda: mg.tensor([1.0], dtype="no such type"), TypeError, "mg.tensor(): dtype must be a number type"),
        (lambda: mg.zeros(2, dtype="int64", requires_grad=True), TypeError, "only floating-point tensors can require gradients, got dtype int64"),
    ],
)
def test_arguments_of_the_wrong_kind(call, error, message):
    with raises(error, message):
        call()


def test_what_the_making_of_tensors_accepts():
    # The checks above refuse no size or dtype that worked before.
    assert mg.zeros(np.int64(2), 3).shape == mg.ones([2, 3]).shape == mg.randn((2, 3)).shape == (2, 3)
    assert mg.zeros(()).shape == () and mg.rand(0, 4).shape == (0, 4)
    for dtype in ("float32", "float64", np.float64, float):
        assert mg.randn(2, dtype=dtype).dtype == np.dtype(dtype)
    for dtype in ("int32", "int64", "bool", np.uint8):
        assert mg.zeros(2, dtype=dtype).dtype == mg.tensor([1, 0], dtype=dtype).dtype == np.dtype(dtype)
    assert mg.ones(2, dtype="float64", requires_grad=True).requires_grad


def test_batch_norm_running_statistics_both_or_neither():
    with raises(ValueError, "batch_norm: running_mean and running_var must both be None or both be given"):
        F.batch_norm(t(4, 3), None, t(3), training=True)  # running_var was silently left as it was
    with raises(ValueError, "batch_norm: momentum must be a number in [0, 1], got None"):
        F.batch_norm(t(4, 3), t(3), t(3), training=True, momentum=None)


def test_batch_norm_running_statistics_count_as_changed_in_place():
    # A graph that read running_mean before a training step updated it would get
    # gradients from the new values; its backward refuses instead.
    running_mean, running_var = Tensor(np.zeros(3, np.float32)), Tensor(np.ones(3, np.float32))
    w = t(3, requires_grad=True)
    y = (w * running_mean).sum()
    F.batch_norm(Tensor(np.random.default_rng(0).standard_normal((4, 3)).astype(np.float32)),
                 running_mean, running_var, training=True)
    with raises(RuntimeError, "Mul: input 1 (shape (3,)) was changed in place after the forward pass"):
        y.backward()


def test_grad_of_an_input_that_does_not_require_grad():
    x, w = mg.tensor([1.0, 2.0]), mg.tensor([3.0, 4.0], requires_grad=True)
    message = "grad(): input 0 (shape (2,)) does not require grad, so the outputs have no gradient with respect to it"
    with raises(RuntimeError, message):  # it said x was not used
        mg.grad((x * w).sum(), x)
    with raises(RuntimeError, message):  # allow_unused=True gave None, silently
        mg.grad((x * w).sum(), [x, w], allow_unused=True)


def test_an_integer_array_constant_that_does_not_fit_the_tensor():
    with raises(OverflowError, "integer values of dtype int64 do not fit into a tensor of dtype int32"):
        mg.tensor(np.array([1, 2], np.int32)) * np.array([3_000_000_000, 1])  # wrapped around to -1294967296
    np.testing.assert_array_equal((mg.tensor(np.array([1, 2], np.int32)) * np.array([3, 1])).numpy(), [3, 2])


def test_item_assignment_inside_a_graph():
    h = mg.tensor([1.0, 2.0], requires_grad=True) * 2
    with raises(RuntimeError, "in-place += on a view (of GetItem) in a graph"):
        h[0] += 1
    with raises(RuntimeError, "x[index] = value where x (shape (2,)) or value requires grad"):
        h[0] = 3.0
    np.testing.assert_array_equal(h.numpy(), [2.0, 4.0])  # unchanged
    w = mg.tensor([1.0, 2.0], requires_grad=True)
    with raises(RuntimeError, "x[index] = value where x (shape (2,)) or value requires grad"):
        w[0] = 5.0
    with raises(TypeError, "tensor indexing supports ints, slices, None and ... ; got list"):
        mg.zeros(3)[[0, 1]] = 1.0


@pytest.mark.parametrize(
    "call, error, message",
    [
        (lambda: F.cross_entropy(t(2, 3), 1), ValueError,
         "cross_entropy: expected a 1-D array of integer labels in 0..2, got array(1)"),  # was: "int has no len()"
        (lambda: F.cross_entropy(t(2, 3), [0, 1, 2]), ValueError,
         "cross_entropy: expected N labels for logits (N, K) = (2, 3), got 3 labels"),
        (lambda: F.log_softmax(t(2, 3), (0, 1)), TypeError, "log_softmax: dim must be an int, got (0, 1) (a tuple)"),
        (lambda: t(2).clamp(), ValueError, "clamp: give min, max or both"),  # returned the tensor unchanged
    ],
    ids=["cross_entropy labels", "cross_entropy count", "log_softmax dim", "clamp"],
)
def test_loss_and_op_arguments(call, error, message):
    with raises(error, message):
        call()


@pytest.mark.parametrize(
    "make, who",
    [
        (lambda: mg.tensor([1.0], requires_grad="no"), "mg.tensor()"),  # stored 'no', which counts as true
        (lambda: mg.zeros(2, requires_grad=1), "mg.zeros()"),
        (lambda: mg.randn(2, requires_grad=None), "mg.randn()"),
        (lambda: nn.Parameter(np.ones(2), requires_grad=0), "nn.Parameter()"),
    ],  # (requires_grad_ itself: test_requires_grad_takes_true_or_false)
)
def test_requires_grad_must_be_a_bool(make, who):
    with raises(TypeError, f"{who}: requires_grad must be True or False, got"):
        make()


def test_to_a_dtype_is_a_cast_that_gradients_flow_through():
    # .to("float64") said "unknown device", then was refused; the way out it named,
    # mg.tensor(w, dtype=...), makes a new leaf, so w's gradient through it was lost.
    w = mg.tensor([1.0, 2.0], requires_grad=True)
    c = mg.tensor(np.array([3.0, 4.0]))  # float64
    loss = (w * w).sum() + (w.to("float64") * c).sum().float()
    loss.backward()
    assert w.grad.dtype == np.float32 and w.grad.tolist() == [5.0, 8.0]  # 2w + c
    assert w.to(np.float32) is w and w.double().dtype == np.float64
    (gw,) = mg.grad((w.double() ** 3).sum(), w, create_graph=True)  # twice differentiable
    gw.sum().backward()
    assert gw.dtype == np.float32 and w.grad.tolist() == [5.0 + 6.0, 8.0 + 12.0]  # + 6w
    i = w.to("int64")  # no gradient flows through integers, as in PyTorch
    assert i.dtype == np.int64 and not i.requires_grad and i.numpy().tolist() == [1, 2]
    with raises(TypeError, "to(): dtype must be a number type (bool, integer or floating point), e.g. 'float32' "
                           "or 'float64', got 'float16x'"):
        w.to("float16x")
    with raises(TypeError, "to(): expected a device ('cpu', 'cuda' or 'auto') or a dtype ('float32', ...), got None"):
        w.to(None)  # an AttributeError on None.kind


def test_binary_cross_entropy_of_targets_that_are_not_in_0_1():
    # A target of 3 gave a negative "loss", silently; PyTorch refuses it too.
    with raises(ValueError, "binary_cross_entropy: target must be in [0, 1], got values from -1.0 to 3.0"):
        F.binary_cross_entropy(mg.tensor([0.9, 0.2, 0.5]), mg.tensor([3.0, -1.0, 1.0]))


def test_binary_cross_entropy_target_gradient_at_0_and_1_is_clamped_without_a_warning():
    p, target = mg.tensor([0.0, 1.0, 0.3]), mg.tensor([1.0, 0.0, 0.5], requires_grad=True)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # log(0) in the backward warned "divide by zero"
        F.binary_cross_entropy(p, target, reduction="sum").backward()
    np.testing.assert_allclose(target.grad, [100.0, -100.0, np.log(0.7) - np.log(0.3)], rtol=1e-6)


@pytest.mark.parametrize("name", ["running_mean", "running_var", "weight", "bias"])
def test_batch_norm_arguments_must_be_tensors_of_the_input_dtype(name):
    args = {"running_mean": t(3), "running_var": t(3), "weight": t(3), "bias": t(3)}
    for training in (True, False):
        with raises(TypeError, f"batch_norm: {name} must be a Tensor or None, got a ndarray"):
            F.batch_norm(t(4, 3), **{**args, name: np.ones(3, np.float32)}, training=training)
        # float64 statistics for a float32 input: training wrote float64 into them, eval named Mul
        with raises(TypeError, f"batch_norm: {name} has dtype float64, the input float32; give them one dtype"):
            F.batch_norm(t(4, 3), **{**args, name: t(3, dtype=np.float64)}, training=training)


def test_dropout_takes_its_generator_by_name_only():
    # PyTorch's fourth argument is inplace: F.dropout(x, 0.5, True, False) was taken as generator=False.
    with pytest.raises(TypeError, match="positional argument"):
        F.dropout(t(2, 3), 0.5, True, False)


def test_log_softmax_and_cross_entropy_name_what_is_wrong_with_their_input():
    with raises(TypeError, "log_softmax: expected floating-point logits, got dtype int64"):
        F.log_softmax(mg.tensor(np.arange(6).reshape(2, 3)), 1)  # named Sub, an op not written there
    torch = pytest.importorskip("torch")
    with raises(TypeError, "cross_entropy: labels: expected a number, a list of numbers or a NumPy (or CuPy) "
                           "array, got a torch.Tensor; for a PyTorch tensor t, pass t.detach().numpy()"):
        F.cross_entropy(t(2, 3), torch.tensor([0, 1]))  # an AttributeError on torch.dtype.kind
    with raises(TypeError, "mg.tensor(): expected a number, a list of numbers or a NumPy (or CuPy) array, "
                           "got a torch.Tensor"):
        mg.tensor(torch.ones(2))


def test_an_in_place_operator_on_a_view_made_outside_a_graph_is_refused():
    # base[0] under no graph is a leaf; `row += w` made a new tensor and base kept its zeros.
    w = mg.tensor([1.0, 2.0], requires_grad=True)
    base = mg.zeros(2, 2)
    row = base[0]
    with raises(RuntimeError, "in-place += on a view in a graph: minigan would make it anew"):
        row += w
    total = mg.zeros(2)  # a tensor of its own is made anew, as before
    total += w
    assert total.grad_fn is not None and base.numpy().sum() == 0


def test_tensor_constructor_takes_values_not_a_shape():
    with raises(TypeError, "Tensor(): requires_grad must be True or False, got 3 (Tensor takes values; for a "
                           "tensor of a given shape, as torch.Tensor(2, 3) makes, use mg.zeros(2, 3))"):
        Tensor(2, 3)  # was the 0-d tensor 2 with requires_grad=3
    # A NumPy scalar (an array's sum) becomes a 0-d array: its ops said "expected all
    # tensors on one device, got cpu and cpu".
    s = Tensor(np.float32(2.0))
    assert type(s.data) is np.ndarray and (s * 3).item() == 6.0
    # A tensor given to Tensor() was kept as its "array" (a tensor of a tensor).
    assert type(Tensor(s).data) is np.ndarray and (Tensor(s) * 3).item() == 6.0


def test_numpy_takes_a_tensors_values_and_matmul_names_what_is_not_a_tensor():
    x = mg.tensor([[1.0, 2.0], [3.0, 4.0]])
    a = np.array(x)  # was an array of objects, one 0-d tensor each
    assert a.dtype == np.float32 and a.tolist() == [[1.0, 2.0], [3.0, 4.0]]
    assert np.asarray(x, dtype=np.float64).dtype == np.float64
    assert repr(x) == "tensor([[1., 2.],\n        [3., 4.]], dtype=float32)"  # rows lined up, as in PyTorch
    with raises(TypeError, "MatMul: input 1 is a list, expected a Tensor"):
        x.matmul([[1.0], [1.0]])  # an AttributeError on list.ndim


def test_grad_names_its_own_argument_for_a_missing_output_gradient():
    x = mg.tensor([1.0, 2.0, 3.0], requires_grad=True)
    with raises(RuntimeError, "grad() of an output of shape (3,) needs grad_outputs[0]: an implicit gradient"):
        mg.grad(x * 2, x)  # it spoke of backward() and its gradient argument


def test_a_mask_of_another_shape_is_named_as_the_problem():
    x = mg.tensor([[1.0, -2.0], [-3.0, 4.0]])
    with raises(IndexError, "x[mask] = value takes a bool tensor of x's shape (2, 2) as the mask, got a Tensor "
                            "of shape (2,)"):
        x[x[:, 0] < 0] = 0  # "tensor indexing supports ints, slices, None and ... ; got Tensor"
    with raises(IndexError, "got a ndarray of shape (2, 2)"):
        x[x.numpy() < 0] = 0
    x[x < 0] = 0
    assert x.numpy().tolist() == [[1.0, 0.0], [0.0, 4.0]]


def test_conv2d_weight_checks_its_shapes_as_conv2d_does():
    x = t(1, 1, 4, 4)
    # a grad_output of another shape gave a "gradient" silently; a kernel larger than
    # the input, uninitialised memory; other channels, a reshape error
    with raises(ValueError, "conv2d_weight: grad_output has shape (1, 1, 1, 4), expected conv2d's output shape "
                            "(1, 1, 2, 2) for input (1, 1, 4, 4) and weight (1, 1, 3, 3)"):
        mg.ops.conv2d_weight(x, t(1, 1, 1, 4), (1, 1, 3, 3))
    with raises(ValueError, "conv2d_weight: kernel size 4 is larger than the padded input (1 + 2·0) along H"):
        mg.ops.conv2d_weight(t(1, 1, 1, 1), t(1, 1, 2, 2), (1, 1, 4, 4))
    with raises(ValueError, "conv2d_weight: input has 1 channels (shape (1, 1, 4, 4)) but the weight of shape "
                            "(1, 2, 3, 3) expects 2"):
        mg.ops.conv2d_weight(x, t(1, 1, 2, 2), (1, 2, 3, 3))


def test_batch_norm_of_no_channels_is_refused_by_name():
    with raises(ValueError, "batch_norm: the input of shape (4, 0, 2, 2) has no channels"):
        F.batch_norm(t(4, 0, 2, 2), None, None, training=True)  # a ZeroDivisionError
