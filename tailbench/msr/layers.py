"""Reparameterized layers of MSR (Zhou, Knowles and Finn, ICLR 2021): weights W = reshape(U v).

A layer's weights are not parameters of their own: they are computed from a *sharing matrix* U
and *filter parameters* v as vec(W) = U v. MSR learns U in an outer loop across tasks and v in
an inner loop per task; a U whose columns tie entries of W together (the same filter at every
position, rotated copies of one filter, ...) makes the layer equivariant to the matching group.

Here U is square and starts as the identity, so a new layer *is* the ordinary layer (W = v, with
the ordinary layer's initialisation); what meta-learning adds is a U whose range concentrates on
the tied directions (see ``sharing_rank``), which then also steers how v can move once U is
frozen: a gradient step on v changes W by -lr U U^T dL/dW.

- ``SharedLinear``: a fully connected layer, vec(W) = U v with U of size (out*in) x (out*in).
- ``SharedConv2d``: a convolution whose ``out_channels`` are ``copies`` groups of ``filters``
  (channel ``o * copies + g`` is copy g of filter o). Its sharing matrix is Kronecker-factored,
  U = I_(filters*in) (x) U_s: every (filter, input channel) pair maps its latent vector
  v[o, i] (copies * k * k numbers) through the same U_s (copies*k*k square) to its ``copies``
  k x k kernels. U_s alone is what is learned, so it is small and carries over to a layer with
  any channel counts and the same kernel size and copies.
"""

from __future__ import annotations

import math

import torch
import torch.nn as nn
import torch.nn.functional as F


def sharing_rank(u: torch.Tensor, tolerance: float = 0.1) -> int:
    """How many of U's singular values exceed `tolerance` times the largest: the number of free
    directions the layer's weights still have (the full size for the identity)."""
    values = torch.linalg.svdvals(u.detach().float())
    return int((values > tolerance * values[0]).sum())


class SharedLinear(nn.Module):
    """y = x W^T + b with vec(W) = U v (row-major W: out x in)."""

    def __init__(self, in_features: int, out_features: int, bias: bool = True) -> None:
        super().__init__()
        self.in_features, self.out_features = in_features, out_features
        ordinary = nn.Linear(in_features, out_features, bias=bias)
        size = in_features * out_features
        self.U = nn.Parameter(torch.eye(size))
        self.v = nn.Parameter(ordinary.weight.detach().flatten().clone())
        self.bias = nn.Parameter(ordinary.bias.detach().clone()) if bias else None

    @classmethod
    def from_linear(cls, layer: nn.Linear) -> "SharedLinear":
        shared = cls(layer.in_features, layer.out_features, bias=layer.bias is not None)
        with torch.no_grad():
            shared.v.copy_(layer.weight.flatten())
            if layer.bias is not None:
                shared.bias.copy_(layer.bias)
        return shared

    def weight(self) -> torch.Tensor:
        return (self.U @ self.v).view(self.out_features, self.in_features)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.linear(x, self.weight(), self.bias)


class SharedConv2d(nn.Module):
    """A square-kernel convolution with W[o * copies + g, i] = block g of U_s v[o, i]."""

    def __init__(
        self, in_channels: int, out_channels: int, kernel_size: int, copies: int = 1,
        stride: int = 1, padding: int = 0, bias: bool = False,
    ) -> None:
        super().__init__()
        if copies < 1 or out_channels % copies:
            raise ValueError(f"out_channels {out_channels} is not a multiple of copies {copies}")
        self.in_channels, self.out_channels, self.kernel_size = in_channels, out_channels, kernel_size
        self.copies, self.filters = copies, out_channels // copies
        self.stride, self.padding = stride, padding
        ordinary = nn.Conv2d(in_channels, out_channels, kernel_size, stride, padding, bias=bias)
        self.latent = copies * kernel_size * kernel_size
        self.U = nn.Parameter(torch.eye(self.latent))
        self.v = nn.Parameter(self.latent_of(ordinary.weight.detach()))
        self.bias = nn.Parameter(ordinary.bias.detach().clone()) if bias else None

    @classmethod
    def from_conv(cls, conv: nn.Conv2d, copies: int) -> "SharedConv2d":
        """The ordinary layer `conv` reparameterized, U = I: the same function, the same weights."""
        if conv.kernel_size[0] != conv.kernel_size[1] or conv.groups != 1 or conv.dilation != (1, 1):
            raise ValueError("only square, ungrouped, undilated convolutions can be reparameterized")
        if conv.stride[0] != conv.stride[1] or not isinstance(conv.padding, tuple) or conv.padding[0] != conv.padding[1]:
            raise ValueError("only equal strides and paddings in both directions can be reparameterized")
        shared = cls(
            conv.in_channels, conv.out_channels, conv.kernel_size[0], copies,
            conv.stride[0], conv.padding[0], bias=conv.bias is not None,
        )
        with torch.no_grad():
            shared.v.copy_(shared.latent_of(conv.weight))
            if conv.bias is not None:
                shared.bias.copy_(conv.bias)
        return shared

    def latent_of(self, weight: torch.Tensor) -> torch.Tensor:
        """The v that gives `weight` [out, in, k, k] when U = I: [filters, in, copies * k * k]."""
        k = self.kernel_size
        grouped = weight.reshape(self.filters, self.copies, self.in_channels, k * k)
        return grouped.permute(0, 2, 1, 3).reshape(self.filters, self.in_channels, self.latent).clone()

    def weight_from(self, u: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        k = self.kernel_size
        mapped = torch.einsum("ab,oib->oia", u, v)  # (I (x) U_s) vec(v), one small matmul
        grouped = mapped.reshape(self.filters, self.in_channels, self.copies, k, k)
        return grouped.permute(0, 2, 1, 3, 4).reshape(self.out_channels, self.in_channels, k, k)

    def weight(self) -> torch.Tensor:
        return self.weight_from(self.U, self.v)

    def freeze_sharing(self, u: torch.Tensor, generator: torch.Generator | None = None) -> None:
        """Fix U to `u` (no longer trained) and draw v afresh so that W = U v has the variance of a
        Kaiming-normal ordinary layer: E[W_ij^2] = 2 / fan_in."""
        with torch.no_grad():
            u = u.to(self.v.device, self.v.dtype)
            del self.U
            self.register_buffer("U", u.clone())
            fan_in = self.in_channels * self.kernel_size ** 2
            per_row = float(u.pow(2).sum()) / u.shape[0]  # E[(U z)_a^2] averaged over rows, z ~ N(0, I)
            scale = math.sqrt(2.0 / fan_in / max(per_row, 1e-12))
            draw = torch.randn(self.v.shape, generator=generator, device=self.v.device, dtype=self.v.dtype)
            self.v.copy_(draw * scale)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.conv2d(x, self.weight(), self.bias, self.stride, self.padding)

    def extra_repr(self) -> str:
        return (f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, copies={self.copies}, "
                f"stride={self.stride}, padding={self.padding}, bias={self.bias is not None}")
