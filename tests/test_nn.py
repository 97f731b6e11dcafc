"""Modules: shapes, parameter names, modes, state dicts, error messages, initialisation."""

from collections import OrderedDict

import numpy as np
import pytest

import minigan as mg
from minigan import models, nn
from minigan.models import mlp_discriminator, mlp_generator
from minigan.nn import functional as F


def t(values):
    return mg.tensor(np.asarray(values, dtype=np.float32))


def small_net():
    return nn.Sequential(
        nn.Linear(4, 8),
        nn.BatchNorm1d(8),
        nn.LeakyReLU(0.2),
        nn.Dropout(0.5),
        nn.Linear(8, 3),
    )


# --- shapes ---------------------------------------------------------------------------
def test_linear_computes_x_wt_plus_b():
    layer = nn.Linear(3, 2)
    assert layer.weight.shape == (2, 3) and layer.bias.shape == (2,)
    x = np.arange(12, dtype=np.float32).reshape(4, 3)
    y = layer(t(x))
    assert y.shape == (4, 2)
    np.testing.assert_allclose(y.numpy(), x @ layer.weight.data.T + layer.bias.data, rtol=1e-6)


def test_linear_without_bias():
    layer = nn.Linear(3, 2, bias=False)
    assert layer.bias is None
    assert [name for name, _ in layer.named_parameters()] == ["weight"]


def test_sequential_flatten_unflatten_shapes():
    net = nn.Sequential(nn.Flatten(), nn.Linear(12, 6), nn.Unflatten(1, (2, 3)))
    x = t(np.zeros((5, 3, 2, 2)))
    assert net[0](x).shape == (5, 12)
    assert net(x).shape == (5, 2, 3)
    assert len(net) == 3


def test_mlp_models_shapes():
    G, D = mlp_generator(), mlp_discriminator()
    z = mg.randn(8, 100)
    fake = G(z)
    assert fake.shape == (8, 1, 28, 28)
    assert D(fake).shape == (8, 1)
    assert np.abs(fake.numpy()).max() <= 1.0  # tanh output


# --- parameters and names ----------------------------------------------------------------------
def test_named_parameters_use_dotted_names():
    net = small_net()
    names = [name for name, _ in net.named_parameters()]
    assert names == ["0.weight", "0.bias", "1.weight", "1.bias", "4.weight", "4.bias"]
    assert [p.shape for p in net.parameters()] == [(8, 4), (8,), (8,), (8,), (3, 8), (3,)]
    assert all(p.requires_grad for p in net.parameters())


def test_mlp_discriminator_parameter_names():
    names = [name for name, _ in mlp_discriminator().named_parameters()]
    assert names == ["1.weight", "1.bias", "3.weight", "3.bias"]  # 0 is Flatten, 2 LeakyReLU


def test_nested_modules_get_nested_names():
    net = nn.Sequential(nn.Sequential(nn.Linear(2, 2)), nn.Linear(2, 1))
    assert [n for n, _ in net.named_parameters()] == ["0.0.weight", "0.0.bias", "1.weight", "1.bias"]


def test_a_module_used_twice_is_listed_once_but_saved_under_each_name():
    # Weight tying: the same layer at two places, or one Parameter in two layers. An
    # optimiser must get it once; a state dict has it under each name, as PyTorch's.
    shared = nn.Linear(2, 2)
    net = nn.Sequential(shared, nn.Tanh(), shared)
    assert [n for n, _ in net.named_parameters()] == ["0.weight", "0.bias"]
    assert [n for n, _ in net.named_modules()] == ["", "0", "1"]
    assert [n for n, _ in net.named_modules(remove_duplicate=False)] == ["", "0", "1", "2"]
    assert list(net.state_dict()) == ["0.weight", "0.bias", "2.weight", "2.bias"]
    encode, decode = nn.Linear(3, 3), nn.Linear(3, 3)
    decode.weight = encode.weight
    tied = nn.Sequential(encode, decode)
    assert [n for n, _ in tied.named_parameters()] == ["0.weight", "0.bias", "1.bias"]
    assert list(tied.state_dict()) == ["0.weight", "0.bias", "1.weight", "1.bias"]
    state = {k: v + 1 for k, v in tied.state_dict().items()}
    tied.load_state_dict(state)  # strict: every name is expected, the shared weight's both
    np.testing.assert_array_equal(decode.weight.data, state["1.weight"])
    bn = nn.BatchNorm1d(2)
    assert [n for n, _ in nn.Sequential(bn, bn).named_buffers()] == [
        "0.running_mean", "0.running_var", "0.num_batches_tracked"]
    torch = pytest.importorskip("torch")
    twin_layer = torch.nn.Linear(2, 2)
    twin = torch.nn.Sequential(twin_layer, torch.nn.Tanh(), twin_layer)
    assert list(net.state_dict()) == list(twin.state_dict())
    net.load_state_dict({k: v.detach().numpy() for k, v in twin.state_dict().items()})


# --- train / eval ------------------------------------------------------------------------------
def test_train_and_eval_reach_every_submodule():
    net = nn.Sequential(small_net(), nn.Tanh())
    assert all(m.training for m in net.modules())
    assert net.eval() is net
    assert not any(m.training for m in net.modules())
    net.train()
    assert all(m.training for m in net.modules())
    with pytest.raises(ValueError, match=r"mode must be True or False, got 'eval' \(for eval mode call .eval\(\)\)"):
        net.train("eval")


def test_eval_mode_changes_dropout_and_batch_norm():
    mg.manual_seed(0)
    net = small_net()
    x = mg.randn(6, 4)
    net.eval()
    # Deterministic in eval mode: no dropout mask, running statistics.
    np.testing.assert_array_equal(net(x).numpy(), net(x).numpy())
    net.train()
    assert not np.array_equal(net(x).numpy(), net(x).numpy())  # fresh dropout masks


# --- state dicts -------------------------------------------------------------------------------
def test_batch_norm_buffers_are_in_state_dict():
    keys = list(small_net().state_dict())
    assert "1.running_mean" in keys and "1.running_var" in keys and "1.num_batches_tracked" in keys
    buffers = [name for name, _ in small_net().named_buffers()]
    assert [name for name, _ in small_net().named_parameters()] == [k for k in keys if k not in buffers]


def test_state_dict_goes_module_by_module_as_pytorch_does():
    # Each module's own parameters, then its own buffers, then its children's, in the
    # order they were registered: the keys, in order, of PyTorch's state_dict().
    class Block(nn.Module):
        def __init__(self):
            super().__init__()
            self.body = small_net()
            self.scale = nn.Parameter(np.ones(3, np.float32))  # its own: listed first

    assert list(Block().state_dict()) == [
        "scale",
        "body.0.weight", "body.0.bias",
        "body.1.weight", "body.1.bias", "body.1.running_mean", "body.1.running_var", "body.1.num_batches_tracked",
        "body.4.weight", "body.4.bias",
    ]


def torch_twin(module, torch):
    """``module`` rebuilt from torch.nn layers of the same sizes, under the same names."""
    if isinstance(module, nn.Sequential):
        return torch.nn.Sequential(OrderedDict((name, torch_twin(m, torch)) for name, m in module._modules.items()))
    if isinstance(module, nn.ModuleList):
        return torch.nn.ModuleList(torch_twin(m, torch) for m in module)
    bias = getattr(module, "bias", None) is not None
    if isinstance(module, nn.Linear):
        return torch.nn.Linear(module.in_features, module.out_features, bias=bias)
    if isinstance(module, (nn.Conv2d, nn.ConvTranspose2d)):
        return getattr(torch.nn, type(module).__name__)(
            module.in_channels, module.out_channels, module.kernel_size, module.stride, module.padding, bias=bias)
    if isinstance(module, (nn.BatchNorm1d, nn.BatchNorm2d)):
        return getattr(torch.nn, type(module).__name__)(module.num_features)
    assert not module._parameters and not module._buffers, f"no twin for {module!r}"
    twin = torch.nn.Module() if module._modules else torch.nn.Identity()  # a wrapper, or an activation
    for name, child in module._modules.items():
        twin.add_module(name, torch_twin(child, torch))
    return twin


@pytest.mark.parametrize("name, conditional", [("mlp", False), ("dcgan", False), ("dcgan", True)])
def test_state_dicts_load_strictly_into_and_from_the_same_model_in_pytorch(name, conditional):
    torch = pytest.importorskip("torch")
    nets = models.build(name, conditional, **({"d_depth": 3, "g_depth": 4} if name == "dcgan" else {}))
    for net in nets:
        for m in net.modules():  # values unlike a new model's, counters included
            for t in m._buffers.values():
                t.data[...] = 5
        twin = torch_twin(net, torch)
        state = net.state_dict()
        assert list(state) == list(twin.state_dict())  # the same keys in the same order
        twin.load_state_dict({k: torch.from_numpy(v) for k, v in state.items()}, strict=True)
        back = OrderedDict((k, v.numpy()) for k, v in twin.state_dict().items())
        assert {k: v.dtype for k, v in back.items()} == {k: v.dtype for k, v in state.items()}
        for k, v in back.items():
            np.testing.assert_array_equal(v, state[k], err_msg=k)
        fresh = models.build(name, conditional, **({"d_depth": 3, "g_depth": 4} if name == "dcgan" else {}))[nets.index(net)]
        fresh.load_state_dict(back)
        for k, v in fresh.state_dict().items():
            np.testing.assert_array_equal(v, state[k], err_msg=k)


def test_load_state_dict_takes_lists_tensors_and_pytorch_tensors():
    net = nn.Linear(2, 1)
    net.load_state_dict({"weight": [[1, 2]], "bias": [0.5]})
    np.testing.assert_array_equal(net(t([[1.0, 1.0]])).numpy(), [[3.5]])
    net.load_state_dict({"weight": t([[3, 4]]), "bias": t([0])})
    np.testing.assert_array_equal(net(t([[1.0, 1.0]])).numpy(), [[7.0]])
    torch = pytest.importorskip("torch")
    source = models.dcgan_generator(latent_dim=3, width=2)
    twin = torch_twin(source, torch)
    for b in twin.buffers():
        b.fill_(3)  # statistics and counters unlike a new model's
    fresh = models.dcgan_generator(latent_dim=3, width=2)
    fresh.load_state_dict(twin.state_dict())
    for k, v in twin.state_dict().items():
        np.testing.assert_array_equal(fresh.state_dict()[k], v.numpy(), err_msg=k)


def test_batch_norm_counts_its_training_forward_passes():
    # PyTorch's num_batches_tracked: an int64 0-d buffer, one more per training-mode
    # forward pass, none in eval mode.
    bn = nn.BatchNorm2d(3)
    assert bn.num_batches_tracked.dtype == np.int64 and bn.num_batches_tracked.shape == ()
    x = mg.randn(4, 3, 2, 2)
    for _ in range(3):
        bn(x)
    assert bn.state_dict()["num_batches_tracked"] == 3
    bn.eval()
    bn(x)
    assert bn.num_batches_tracked.item() == 3
    fresh = nn.BatchNorm2d(3).eval()
    fresh(x)
    assert fresh.num_batches_tracked.item() == 0


def test_a_state_dict_without_batch_norm_counters_loads_and_leaves_them():
    # Saved before num_batches_tracked existed (PyTorch accepts such state dicts too).
    mg.manual_seed(0)
    source = small_net()
    source(mg.randn(6, 4))
    old = source.state_dict()
    del old["1.num_batches_tracked"]
    net = small_net()
    net.load_state_dict(old)  # strict
    for k, v in old.items():
        np.testing.assert_array_equal(net.state_dict()[k], v, err_msg=k)
    assert net.state_dict()["1.num_batches_tracked"] == 0
    net(mg.randn(6, 4))
    net.load_state_dict(old)
    assert net.state_dict()["1.num_batches_tracked"] == 1  # kept as it was
    del old["1.running_var"]  # only the counter may be missing
    with pytest.raises(RuntimeError, match=r"missing keys: 1\.running_var$"):
        net.load_state_dict(old)


def test_a_buffer_given_a_new_tensor_stays_a_buffer():
    bn = nn.BatchNorm1d(3)
    bn.running_mean = mg.tensor([1.0, 2.0, 3.0])
    np.testing.assert_array_equal(bn.state_dict()["running_mean"], [1.0, 2.0, 3.0])
    bn.running_mean = nn.Parameter(mg.zeros(3))  # a Parameter is a parameter wherever it goes
    assert [n for n, _ in bn.named_parameters()] == ["weight", "bias", "running_mean"]
    assert [n for n, _ in bn.named_buffers()] == ["running_var", "num_batches_tracked"]


def test_state_dict_is_a_copy():
    net = nn.Linear(2, 2)
    state = net.state_dict()
    before = state["weight"].copy()
    net.weight.data += 1.0
    np.testing.assert_array_equal(state["weight"], before)


def test_state_dict_round_trip_gives_identical_outputs():
    mg.manual_seed(1)
    source = small_net()
    for _ in range(3):  # move batch norm's running statistics away from (0, 1)
        source(mg.randn(16, 4) * 3 + 1)
    mg.manual_seed(2)
    copy = small_net()
    x = mg.randn(5, 4)
    source.eval(), copy.eval()
    assert not np.array_equal(source(x).numpy(), copy(x).numpy())
    copy.load_state_dict(source.state_dict())
    np.testing.assert_array_equal(source(x).numpy(), copy(x).numpy())
    for key, value in source.state_dict().items():
        np.testing.assert_array_equal(copy.state_dict()[key], value)


@pytest.mark.parametrize("change", [
    lambda m: m.load_state_dict(m.state_dict()),
    lambda m: nn.init.normal_(m.weight),
    lambda m: nn.init.zeros_(m.bias),
    lambda m: nn.init.constant_(m.bias, 0.5),
    lambda m: mg.optim.Adam(m.parameters()).step(),
], ids=["load_state_dict", "normal_", "zeros_", "constant_", "Adam.step"])
def test_changing_weights_in_place_is_seen_by_a_graph_recorded_before(change):
    m = nn.Linear(3, 2)
    for p in m.parameters():
        p.grad = np.ones(p.shape, np.float32)  # something for the optimiser to step with
    y = m(mg.randn(4, 3)).sum()
    change(m)
    with pytest.raises(RuntimeError, match="was changed in place after the forward pass"):
        y.backward()


def test_load_state_dict_missing_key_is_named():
    state = small_net().state_dict()
    del state["4.bias"]
    with pytest.raises(RuntimeError, match=r"missing keys: 4\.bias"):
        small_net().load_state_dict(state)
    skipped = small_net().load_state_dict(state, strict=False)  # allowed when not strict, and said
    assert skipped.missing_keys == ["4.bias"] and skipped.unexpected_keys == []


def test_load_state_dict_unexpected_key_is_named():
    state = small_net().state_dict()
    state["5.weight"] = np.zeros((3, 3), np.float32)
    with pytest.raises(RuntimeError, match=r"unexpected keys: 5\.weight"):
        small_net().load_state_dict(state)


def test_load_state_dict_wrong_shape_is_named_and_changes_nothing():
    net = small_net()
    before = net.state_dict()
    state = small_net().state_dict()
    state["0.weight"] = np.zeros((4, 8), np.float32)
    with pytest.raises(RuntimeError, match=r"0\.weight: shape \(4, 8\) in the state dict, \(8, 4\) in the model"):
        net.load_state_dict(state)
    for key, value in net.state_dict().items():
        np.testing.assert_array_equal(value, before[key])


# --- error messages ----------------------------------------------------------------------------
def test_linear_wrong_input_shape_names_layer_and_shapes():
    layer = nn.Linear(784, 128)
    with pytest.raises(ValueError) as info:
        layer(t(np.zeros((8, 100))))
    message = str(info.value)
    assert "Linear(in_features=784, out_features=128" in message
    assert "(N, 784)" in message and "(8, 100)" in message


def test_discriminator_on_unflattened_wrong_image_size_names_the_layer():
    with pytest.raises(ValueError, match=r"Linear\(in_features=784.*\(2, 100\)"):
        mlp_discriminator()(t(np.zeros((2, 1, 10, 10))))


# --- initialisation --------------------------------------------------------------------------
def test_dcgan_init_statistics():
    mg.manual_seed(0)
    net = nn.Sequential(nn.Linear(200, 300), nn.BatchNorm1d(20_000), nn.Conv2d(16, 32, 4))
    nn.init.dcgan_init_(net)
    linear, bn, conv = net[0], net[1], net[2]
    for w in (linear.weight.data, conv.weight.data):  # N(0, 0.02)
        assert abs(w.std() - 0.02) < 0.0005
        assert abs(w.mean()) < 0.0005
    np.testing.assert_array_equal(linear.bias.data, 0.0)
    np.testing.assert_array_equal(conv.bias.data, 0.0)
    assert abs(bn.weight.data.mean() - 1.0) < 0.001  # γ ~ N(1, 0.02)
    assert abs(bn.weight.data.std() - 0.02) < 0.0005
    np.testing.assert_array_equal(bn.bias.data, 0.0)
    assert linear.weight.dtype == np.float32


def dcgan_tutorial_weights_init(m):
    """PyTorch's DCGAN tutorial's initialiser, with m.weight for its m.weight.data (in
    minigan .data is the raw array; the tensor itself works in PyTorch too)."""
    classname = m.__class__.__name__
    if classname.find("Conv") != -1:
        nn.init.normal_(m.weight, 0.0, 0.02)
    elif classname.find("BatchNorm") != -1:
        nn.init.normal_(m.weight, 1.0, 0.02)
        nn.init.constant_(m.bias, 0)


def test_the_dcgan_tutorials_init_through_apply_is_dcgan_init():
    def net():  # the tutorial's layers: convolutions without bias
        return nn.Sequential(nn.Conv2d(16, 32, 4, bias=False), nn.BatchNorm2d(20_000), nn.LeakyReLU(0.2))

    mg.manual_seed(0)
    tutorial = net()
    assert tutorial.apply(dcgan_tutorial_weights_init) is tutorial
    mg.manual_seed(0)
    ours = nn.init.dcgan_init_(net())
    for key, value in ours.state_dict().items():  # the same draws, in the same order
        np.testing.assert_array_equal(tutorial.state_dict()[key], value, err_msg=key)
    assert abs(tutorial[1].weight.data.std() - 0.02) < 0.0005


def test_apply_calls_fn_on_the_children_first_then_the_module():
    net = nn.Sequential(nn.Sequential(nn.Linear(2, 2), nn.Tanh()), nn.ModuleList([nn.ReLU()]), nn.Sigmoid())
    seen = []
    net.apply(seen.append)
    assert [type(m).__name__ for m in seen] == ["Linear", "Tanh", "Sequential", "ReLU", "ModuleList", "Sigmoid", "Sequential"]
    torch = pytest.importorskip("torch")
    twin_seen = []
    torch_twin(net, torch).apply(twin_seen.append)
    assert [type(m).__name__ for m in twin_seen] == [
        "Linear", "Identity", "Sequential", "Identity", "ModuleList", "Identity", "Sequential"]  # activations: Identity


def test_constant_fills_in_place_and_returns_the_tensor():
    w = nn.Linear(3, 2).weight
    assert nn.init.constant_(w, 0.25) is w
    np.testing.assert_array_equal(w.data, np.full((2, 3), 0.25, np.float32))
    assert w.dtype == np.float32
    nn.init.ones_(w)
    np.testing.assert_array_equal(w.data, 1.0)


def test_default_linear_init_is_uniform_in_one_over_sqrt_fan_in():
    mg.manual_seed(0)
    w = nn.Linear(400, 300).weight.data
    bound = 1 / np.sqrt(400)
    assert np.abs(w).max() <= bound and np.abs(w).max() > 0.99 * bound


# --- gradients -----------------------------------------------------------------------------------
def test_zero_grad_clears_grads():
    net = small_net()
    net(mg.randn(4, 4)).sum().backward()
    assert all(p.grad is not None for p in net.parameters())
    net.zero_grad()
    assert all(p.grad is None for p in net.parameters())
    opt = mg.optim.SGD(net.parameters(), lr=0.1)
    net(mg.randn(4, 4)).sum().backward()
    opt.zero_grad()
    assert all(p.grad is None for p in net.parameters())
    net.eval()  # no dropout: the same x gives the same gradients
    x = mg.randn(4, 4)
    opt.zero_grad()
    net(x).sum().backward()
    fresh = [p.grad.copy() for p in net.parameters()]  # the gradients of one backward from None
    for clear in (net.zero_grad, opt.zero_grad):  # PyTorch's set_to_none=False: zeros, in place
        net(mg.randn(4, 4)).sum().backward()
        grads = [p.grad for p in net.parameters()]
        clear(set_to_none=False)
        assert all(p.grad is g and not g.any() for p, g in zip(net.parameters(), grads))
        net(x).sum().backward()  # the next backward adds to the zeros: the same gradients as from None
        for p, want in zip(net.parameters(), fresh):
            np.testing.assert_allclose(p.grad, want, rtol=1e-6)


def test_parameter_grads_have_parameter_shapes():
    net = small_net()
    net(mg.randn(4, 4)).sum().backward()
    for p in net.parameters():
        assert p.grad.shape == p.shape and p.grad.dtype == np.float32


def test_sequential_takes_modules_only_and_an_ordered_dict_of_them():
    net = nn.Sequential(OrderedDict(fc=nn.Linear(2, 3), act=nn.ReLU()))
    assert [name for name, _ in net.named_parameters()] == ["fc.weight", "fc.bias"]
    tail = net[1:]  # a slice is a Sequential again, names kept
    assert isinstance(tail, nn.Sequential) and list(tail._modules) == ["act"]
    with pytest.raises(TypeError, match="is not a Module; a function such as F.relu has a module twin"):
        nn.Sequential(nn.Linear(2, 2), mg.nn.functional.relu)  # it was skipped silently


def test_module_list_holds_modules_under_their_positions():
    layers = nn.ModuleList([nn.Linear(2, 3)])
    assert layers.append(nn.ReLU()) is layers and layers.extend([nn.Linear(3, 1)]) is layers
    layers.insert(1, nn.BatchNorm1d(3))
    assert [type(m).__name__ for m in layers] == ["Linear", "BatchNorm1d", "ReLU", "Linear"]
    assert len(layers) == 4 and layers[-1] is layers[3] and layers[-4] is layers[0]
    tail = layers[1:3]  # a ModuleList again, numbered from 0
    assert isinstance(tail, nn.ModuleList) and list(tail._modules) == ["0", "1"] and tail[0] is layers[1]

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.layers = layers

        def forward(self, x):
            for layer in self.layers:
                x = layer(x)
            return x

    net = Net()
    assert [name for name, _ in net.named_parameters()] == [
        "layers.0.weight", "layers.0.bias", "layers.1.weight", "layers.1.bias", "layers.3.weight", "layers.3.bias"]
    assert net(mg.randn(4, 2)).shape == (4, 1)
    torch = pytest.importorskip("torch")
    twin = torch.nn.Module()
    twin.layers = torch_twin(layers, torch)
    assert list(net.state_dict()) == list(twin.state_dict())


def test_add_module_and_children_as_pytorch_has_them():
    net = nn.Module()
    net.add_module("fc", nn.Linear(2, 2))
    net.add_module("1", nn.BatchNorm1d(2))  # not a name `net.x = ...` could set
    net.add_module("again", net.fc)  # one module under two names
    assert [(name, type(m).__name__) for name, m in net.named_children()] == [("fc", "Linear"), ("1", "BatchNorm1d")]
    assert list(net.children()) == [net.fc, getattr(net, "1")]
    assert list(net.state_dict()) == ["fc.weight", "fc.bias", "1.weight", "1.bias",
                                      "1.running_mean", "1.running_var", "1.num_batches_tracked",
                                      "again.weight", "again.bias"]
    bn = getattr(net, "1")
    assert list(net.buffers()) == [bn.running_mean, bn.running_var, bn.num_batches_tracked]
    torch = pytest.importorskip("torch")
    twin = torch.nn.Module()
    for name, child in net._modules.items():
        twin.add_module(name, twin.fc if name == "again" else torch_twin(child, torch))
    assert [name for name, _ in twin.named_children()] == [name for name, _ in net.named_children()]
    assert len(list(twin.children())) == 2 and len(list(twin.buffers())) == 3
    assert list(twin.state_dict()) == list(net.state_dict())


def test_convolutions_take_pytorchs_positional_arguments():
    # (in, out, k, stride, padding, dilation, groups, bias) and, transposed,
    # (in, out, k, stride, padding, output_padding, groups, bias, dilation).
    conv = nn.Conv2d(3, 4, 3, 2, 1, 1, 1, False)
    assert conv.stride == (2, 2) and conv.padding == (1, 1) and conv.bias is None
    up = nn.ConvTranspose2d(4, 3, 3, 2, 1, 1, 1, False, 1)
    assert up.output_padding == (1, 1) and up.bias is None
    x = mg.randn(1, 4, 5, 5)
    assert up(x).shape == (1, 3, 10, 10)
    y = F.conv_transpose2d(x, up.weight, None, 2, 1, 1, 1, 1)  # groups and dilation 1, not an output size
    np.testing.assert_array_equal(y.numpy(), up(x).numpy())


def test_none_keeps_a_registered_name_in_its_place_as_in_pytorch():
    lin = nn.Linear(2, 3)
    lin.weight = None  # e.g. to put another Parameter there
    assert [name for name, _ in lin.named_parameters()] == ["bias"]
    lin.weight = nn.Parameter(np.zeros((3, 2), np.float32))
    assert [name for name, _ in lin.named_parameters()] == ["weight", "bias"]  # in its place, for the optimiser's order
    bn = nn.BatchNorm1d(3)
    bn.running_mean = None
    assert list(bn.state_dict()) == ["weight", "bias", "running_var", "num_batches_tracked"]
    bn.running_mean = mg.zeros(3)
    assert list(bn.state_dict()) == ["weight", "bias", "running_mean", "running_var", "num_batches_tracked"]
    net = nn.Sequential(nn.Linear(2, 2), nn.Tanh())
    setattr(net, "0", None)
    assert list(net.state_dict()) == [] and [n for n, _ in net.named_children()] == ["1"]


def test_registered_names_refuse_what_would_drop_them():
    bn = nn.BatchNorm1d(3)
    with pytest.raises(TypeError, match=r"cannot assign a ndarray as buffer 'running_var' of BatchNorm1d: "
                                        r"give a tensor \(mg.tensor\(...\)\), or None"):
        bn.running_var = np.ones(3)  # it would no longer be saved, and the next forward would fail
    net = nn.Sequential(nn.Linear(2, 2))
    with pytest.raises(TypeError, match="cannot assign a builtin_function_or_method as module '0' of Sequential: give a Module, or None"):
        setattr(net, "0", len)


def test_register_parameter_and_buffer_take_none_as_pytorch_does():
    class Masked(nn.Module):
        def __init__(self):
            super().__init__()
            self.lin = nn.Linear(2, 2)
            self.register_parameter("scale", None)
            self.register_buffer("mask", None)

    m = Masked()
    assert m.scale is None and m.mask is None
    assert list(m.state_dict()) == ["lin.weight", "lin.bias"]
    m.load_state_dict(m.state_dict())
    m.mask = mg.ones(2)
    m.scale = nn.Parameter(np.ones(2, np.float32))
    assert list(m.state_dict()) == ["scale", "mask", "lin.weight", "lin.bias"]
    assert next(m.parameters()) is m.scale  # parameters() is a generator, as in PyTorch
    with pytest.raises(TypeError, match="register_buffer 'x': expected a tensor \\(mg.tensor\\(...\\)\\) or None, got a ndarray"):
        m.register_buffer("x", np.ones(2))
    with pytest.raises(TypeError, match="register_parameter 'y': expected an nn.Parameter or None, got a Tensor"):
        m.register_parameter("y", mg.ones(2))
    with pytest.raises(KeyError, match="register_buffer: Masked already has an attribute 'lin'"):
        m.register_buffer("lin", None)
    torch = pytest.importorskip("torch")
    twin = torch.nn.Module()
    twin.register_parameter("scale", torch.nn.Parameter(torch.ones(2)))
    twin.register_buffer("mask", torch.ones(2))
    twin.lin = torch.nn.Linear(2, 2)
    assert list(twin.state_dict()) == list(m.state_dict())


def test_a_parameter_is_not_replaced_by_a_plain_tensor():
    lin = nn.Linear(2, 3)
    with pytest.raises(TypeError, match="cannot assign a Tensor as parameter 'weight' of Linear"):
        lin.weight = mg.tensor(np.zeros((3, 2), np.float32))  # it would no longer be trained or saved
    lin.weight = nn.Parameter(np.zeros((3, 2), np.float32))
    del lin.bias
    assert [name for name, _ in lin.named_parameters()] == ["weight"]


def test_conv_repr_is_pytorchs():
    # Sizes as pairs; padding and output_padding shown when not 0, a missing bias always.
    assert repr(nn.Conv2d(2, 3, 4, bias=False)) == "Conv2d(2, 3, kernel_size=(4, 4), stride=(1, 1), bias=False)"
    assert repr(nn.Conv2d(1, 64, 4, 2, 1)) == "Conv2d(1, 64, kernel_size=(4, 4), stride=(2, 2), padding=(1, 1))"
    assert repr(nn.ConvTranspose2d(2, 3, (4, 3), stride=2, output_padding=(1, 0))) == (
        "ConvTranspose2d(2, 3, kernel_size=(4, 3), stride=(2, 2), output_padding=(1, 0))")


def test_batch_norm_running_var_is_the_batch_variance_unbiased():
    # It was worked out from the float32 1/√(var + eps) as 1/invstd² - eps: a constant
    # channel got 9.4e-13 instead of PyTorch's 0.
    x = np.random.default_rng(0).standard_normal((4, 2, 3, 3)).astype(np.float32)
    x[:, 0] = 3.0
    bn = nn.BatchNorm2d(2, momentum=1.0)  # running = the batch's statistics
    bn(mg.tensor(x))
    assert bn.running_var.numpy()[0] == 0
    np.testing.assert_allclose(bn.running_var.numpy()[1], x[:, 1].astype(np.float64).var(ddof=1), rtol=1e-6)


def test_a_module_given_anew_keeps_its_place():
    # As in PyTorch: replacing a child keeps its position, in the repr and in state_dict
    # (it moved to the end, so the keys came out in another order).
    layers = nn.ModuleList([nn.Linear(2, 2), nn.Tanh()])
    layers[0] = nn.Linear(2, 3)
    layers[-1] = nn.ReLU()
    assert [type(m).__name__ for m in layers] == ["Linear", "ReLU"] and layers[0].out_features == 3
    net = nn.Sequential(nn.Linear(2, 2), nn.Linear(2, 2))
    setattr(net, "0", nn.Linear(2, 2))
    assert list(net.state_dict()) == ["0.weight", "0.bias", "1.weight", "1.bias"]
    with pytest.raises(IndexError, match="ModuleList: index 2 is out of range for 2 modules"):
        layers[2] = nn.ReLU()
    with pytest.raises(TypeError, match=r"ModuleList: expected an int index \(or, to read, a slice\), got slice"):
        layers[0:1] = [nn.ReLU()]  # registered a child named "range(0, 1)"
    assert list(layers.state_dict()) == ["0.weight", "0.bias"]


def test_train_asks_each_child_so_an_overriding_train_is_heard():
    # PyTorch's Module.train calls child.train(mode); setting every module's flag
    # directly undid a child's own train() that keeps its batch norm frozen.
    class FrozenNorm(nn.Module):
        def __init__(self):
            super().__init__()
            self.bn = nn.BatchNorm1d(3)

        def train(self, mode=True):
            super().train(mode)
            self.bn.eval()
            return self

    net = nn.Sequential(nn.Linear(3, 3), FrozenNorm())
    net.eval()
    net.train()
    assert net.training and net[0].training and net[1].training
    assert not net[1].bn.training


def test_a_missing_bias_is_a_registered_none_that_only_a_parameter_may_replace():
    # As in PyTorch: bias=False (affine=False) registers the name with None, so a plain
    # tensor assigned to it later is refused instead of silently never trained or saved.
    for layer, name in ((nn.Linear(2, 3, bias=False), "bias"), (nn.Conv2d(1, 2, 3, bias=False), "bias"),
                        (nn.BatchNorm1d(3, affine=False), "weight"), (nn.BatchNorm2d(3, affine=False), "bias")):
        with pytest.raises(TypeError, match=f"cannot assign a Tensor as parameter '{name}'.*nn.Parameter"):
            setattr(layer, name, mg.zeros(3))
        setattr(layer, name, nn.Parameter(np.zeros(3, np.float32)))
        assert name in dict(layer.named_parameters())


def test_repr_shows_settings_and_children_as_pytorch_does():
    assert repr(nn.Dropout(0.3)) == "Dropout(p=0.3)"
    assert repr(nn.AvgPool2d(4)) == "AvgPool2d(kernel_size=4, stride=4)"
    assert repr(nn.Flatten(2)) == "Flatten(start_dim=2, end_dim=-1)"
    assert repr(nn.BatchNorm1d(3, affine=False)) == (
        "BatchNorm1d(3, eps=1e-05, momentum=0.1, affine=False, bias=False, track_running_stats=True)")
    assert repr(nn.Upsample(scale_factor=2)) == "Upsample(scale_factor=2, mode='nearest')"

    class Scaled(nn.Module):  # settings of its own and a child: both shown (the settings were dropped)
        def __init__(self):
            super().__init__()
            self.scale = 3
            self.lin = nn.Linear(2, 2)

        def extra_repr(self):
            return f"scale={self.scale}"

    assert repr(Scaled()) == "Scaled(\n  scale=3\n  (lin): Linear(in_features=2, out_features=2, bias=True)\n)"
    assert repr(nn.Sequential()) == "Sequential()"
    torch = pytest.importorskip("torch")
    for ours, theirs in ((nn.Sequential(nn.Linear(2, 3), nn.LeakyReLU(0.2), nn.BatchNorm1d(3)),
                          torch.nn.Sequential(torch.nn.Linear(2, 3), torch.nn.LeakyReLU(0.2), torch.nn.BatchNorm1d(3))),
                         (nn.Flatten(), torch.nn.Flatten())):
        assert repr(ours) == repr(theirs)


def test_load_state_dict_reads_only_its_own_entries_and_names_a_bad_one():
    net = small_net()
    ragged = [np.zeros(2), np.zeros(3)]  # not an array at all
    skipped = net.load_state_dict({**net.state_dict(), "extra": ragged}, strict=False)
    assert skipped.unexpected_keys == ["extra"]
    with pytest.raises(RuntimeError, match=r"0\.bias: not an array"):
        net.load_state_dict({**net.state_dict(), "0.bias": ragged})


@pytest.mark.parametrize("call, words", [
    (lambda w: nn.init.normal_(w, 0.0, float("nan")), r"nn.init.normal_: std must be 0 or more, got nan"),
    (lambda w: nn.init.normal_(w, 0.0, -1.0), r"nn.init.normal_: std must be 0 or more, got -1.0"),
    (lambda w: nn.init.uniform_(w, 1.0, 0.0), r"nn.init.uniform_: expected a <= b .*got a=1.0, b=0.0"),
])
def test_init_refuses_bad_arguments_by_name(call, words):
    w = nn.Linear(2, 2).weight
    before = w.numpy()
    with pytest.raises(ValueError, match=words):
        call(w)
    np.testing.assert_array_equal(w.numpy(), before)
    with pytest.raises(TypeError, match="nn.init.normal_: std must be a number"):
        nn.init.normal_(w, 0.0, "1")


def test_batch_norm_1d_over_n_c_l_and_without_running_statistics_as_in_pytorch():
    torch = pytest.importorskip("torch")
    x = np.random.default_rng(1).standard_normal((4, 3, 5)).astype(np.float32)
    for kwargs in ({}, {"track_running_stats": False}, {"affine": False}):
        ours, theirs = nn.BatchNorm1d(3, **kwargs), torch.nn.BatchNorm1d(3, **kwargs)
        assert repr(ours) == repr(theirs)
        assert list(ours.state_dict()) == list(theirs.state_dict())
        for mode in (True, False):  # without running statistics, eval mode uses the batch's too
            ours.train(mode), theirs.train(mode)
            xt = torch.tensor(x, requires_grad=True)
            xm = mg.tensor(x, requires_grad=True)
            g = np.random.default_rng(2).standard_normal(x.shape).astype(np.float32)
            ym, yt = ours(xm), theirs(xt)
            (ym * mg.tensor(g)).sum().backward()
            (yt * torch.tensor(g)).sum().backward()
            np.testing.assert_allclose(ym.numpy(), yt.detach().numpy(), atol=1e-5)
            np.testing.assert_allclose(xm.grad, xt.grad.numpy(), atol=1e-5)
        for name, value in theirs.state_dict().items():
            np.testing.assert_allclose(ours.state_dict()[name], value.numpy(), rtol=1e-6)
    with pytest.raises(ValueError, match=r"expected input of shape \(N, 3\) or \(N, 3, L\), got \(4, 3, 5, 1\)"):
        nn.BatchNorm1d(3)(mg.tensor(x[..., None]))
