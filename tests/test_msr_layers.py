"""The reparameterized layers: they start as the ordinary layer, and W = reshape(U v) exactly."""

from __future__ import annotations

import pytest
import torch
import torch.nn as nn

from tailbench.msr.layers import SharedConv2d, SharedLinear, sharing_rank


def test_a_new_shared_linear_layer_is_the_ordinary_layer():
    torch.manual_seed(0)
    ordinary = nn.Linear(7, 5)
    shared = SharedLinear.from_linear(ordinary)
    assert torch.equal(shared.U, torch.eye(35))
    x = torch.randn(4, 7)
    assert torch.allclose(shared(x), ordinary(x), atol=1e-6)
    fresh = SharedLinear(7, 5)  # its own initialisation: the ordinary layer's, W = v
    assert torch.equal(fresh.weight(), fresh.v.view(5, 7))
    assert fresh.v.abs().max() <= 1 / 7 ** 0.5  # nn.Linear's uniform(-1/sqrt(in), 1/sqrt(in))


def test_shared_linear_weight_is_U_times_v():
    layer = SharedLinear(3, 2, bias=False)
    with torch.no_grad():
        layer.U.copy_(torch.randn(6, 6))
    assert torch.allclose(layer.weight().flatten(), layer.U @ layer.v)


@pytest.mark.parametrize("copies, stride, padding, bias", [(1, 1, 1, False), (4, 1, 1, False), (2, 2, 0, True)])
def test_a_new_shared_convolution_is_the_ordinary_layer(copies, stride, padding, bias):
    torch.manual_seed(0)
    ordinary = nn.Conv2d(3, 8, 3, stride, padding, bias=bias)
    shared = SharedConv2d.from_conv(ordinary, copies)
    assert torch.equal(shared.U, torch.eye(copies * 9))
    assert torch.equal(shared.weight(), ordinary.weight)
    x = torch.randn(2, 3, 10, 10)
    assert torch.allclose(shared(x), ordinary(x), atol=1e-6)


def test_shared_convolution_is_the_kronecker_factored_reparameterization():
    """vec(W) = (I_(filters*in) (x) U_s) vec(v), with channel o * copies + g copy g of filter o."""
    torch.manual_seed(0)
    layer = SharedConv2d(2, 6, 3, copies=3)
    with torch.no_grad():
        layer.U.copy_(torch.randn(27, 27))
    full = torch.kron(torch.eye(2 * 2), layer.U)  # filters * in = 2 * 2 blocks
    mapped = (full @ layer.v.flatten()).view(2, 2, 3, 3, 3)  # [filter, in, copy, k, k]
    expected = mapped.permute(0, 2, 1, 3, 4).reshape(6, 2, 3, 3)
    assert torch.allclose(layer.weight(), expected, atol=1e-5)


def test_tied_copies_make_a_rotation_equivariant_lifting_layer():
    """A U_s whose copies are 90-degree turns of one kernel: turning the image turns every map
    and cycles the copies, exactly (what MSR can represent for a finite group)."""
    torch.manual_seed(0)
    layer = SharedConv2d(1, 8, 3, copies=4, padding=1)
    turns = torch.zeros(36, 36)
    base = torch.arange(9).view(3, 3)
    for g in range(4):
        turns[g * 9 + torch.arange(9), torch.rot90(base, g).flatten()] = 1.0
    with torch.no_grad():
        layer.U.copy_(turns)
    x = torch.randn(2, 1, 9, 9)
    out, turned = layer(x), layer(torch.rot90(x, 1, (2, 3)))
    expected = torch.rot90(out, 1, (2, 3)).view(2, 2, 4, 9, 9).roll(1, dims=2).view(2, 8, 9, 9)
    assert torch.allclose(turned, expected, atol=1e-5)
    assert not torch.allclose(turned, torch.rot90(out, 1, (2, 3)), atol=1e-3)  # the copies do move
    assert sharing_rank(layer.U) == 9 and sharing_rank(torch.eye(36)) == 36


def test_freezing_the_sharing_keeps_U_out_of_training_and_v_at_the_ordinary_scale():
    layer = SharedConv2d(4, 256, 3, copies=4, padding=1)
    u = torch.eye(36) * 3.0
    layer.freeze_sharing(u, torch.Generator().manual_seed(0))
    assert [name for name, _ in layer.named_parameters()] == ["v"]
    assert "U" in dict(layer.named_buffers()) and torch.equal(layer.U, u)
    assert layer.weight().var().item() == pytest.approx(2.0 / (4 * 9), rel=0.1)  # Kaiming normal
    again = SharedConv2d(4, 256, 3, copies=4, padding=1)
    again.freeze_sharing(u, torch.Generator().manual_seed(0))
    assert torch.equal(again.v, layer.v)  # drawn from the given generator only


def test_copies_must_divide_the_channels():
    with pytest.raises(ValueError, match="multiple of copies"):
        SharedConv2d(1, 10, 3, copies=4)
