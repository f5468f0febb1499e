"""A single-domain MUNIT-style generator, written from the paper's description.

Huang, Liu, Belongie and Kautz, "Multimodal Unsupervised Image-to-Image Translation", ECCV 2018:
an image is split into a *content* code (a spatial feature map, from downsamplings and residual
blocks with instance normalisation) and a low-dimensional *style* code (from downsamplings and
global pooling); a decoder rebuilds an image from a content code with residual blocks whose
adaptive instance normalisation (AdaIN) takes its scale and bias from an MLP on the style code.
An LSGAN discriminator judges the results. GIT (Zhou et al., ICLR 2022) trains it on ONE
domain, the long-tailed training set, so that the style code captures the nuisance (rotation,
background, thickness) and ``decode(content(x), s)`` with ``s ~ N(0, I)`` redraws it.

Images are in [-1, 1]; any channel count; sides divisible by ``2 ** n_down`` (4 by default).
Convolutions pad with zeros so that the 2x2 content maps of 8x8 test images work too.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields, replace

import torch
import torch.nn as nn
import torch.nn.functional as F

from tailbench.asset_cache import config_digest
from tailbench.errors import UserError
from tailbench.options import coerce


TEXT_OPTIONS = {"flip": ("auto", "on", "off")}  # the options that are words, with their values


@dataclass(frozen=True)
class GeneratorConfig:
    """Architecture and training settings; every field is part of the cache key."""

    dim: int = 64  # channels after the stem; doubled by each downsampling
    n_down: int = 2  # stride-2 downsamplings in the content encoder (upsamplings in the decoder)
    n_res: int = 4  # residual blocks in the content encoder and in the decoder
    style_dim: int = 8
    style_downs: int = 4  # stride-2 downsamplings in the style encoder (fewer if the image is small)
    mlp_dim: int = 256
    dis_dim: int = 64
    dis_layers: int = 4
    batch_size: int = 32
    iters: int = 10_000
    lr: float = 1e-4
    lr_step: int = 100_000  # iterations between halvings of the lr (the paper's 100k)
    lr_gamma: float = 0.5
    beta1: float = 0.5
    beta2: float = 0.999
    weight_decay: float = 1e-4
    w_gan: float = 1.0
    w_img: float = 10.0
    w_style: float = 1.0
    w_content: float = 1.0
    # Random horizontal flip (p = 0.5) of every training image: "on", "off", or "auto", the
    # reference's choice for the dataset (tailbench.generative.train.input_flip).
    flip: str = "auto"

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name in TEXT_OPTIONS:
                if value not in TEXT_OPTIONS[f.name]:
                    raise UserError(f"generator option {f.name}={value!r} must be one of {', '.join(TEXT_OPTIONS[f.name])}")
                continue
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise UserError(f"generator option {f.name}={value!r} must be a number")
        positive = ("dim", "n_res", "style_dim", "mlp_dim", "dis_dim", "dis_layers", "batch_size", "iters", "lr", "lr_step")
        for name in positive:
            if getattr(self, name) <= 0:
                raise UserError(f"generator option {name}={getattr(self, name)} must be positive")
        for name in ("n_down", "style_downs"):
            if getattr(self, name) < 0:
                raise UserError(f"generator option {name}={getattr(self, name)} must be non-negative")
        for name in ("w_gan", "w_img", "w_style", "w_content", "weight_decay"):
            if getattr(self, name) < 0:
                raise UserError(f"generator option {name}={getattr(self, name)} must be non-negative")
        if not (0 <= self.beta1 < 1 and 0 <= self.beta2 < 1 and 0 < self.lr_gamma <= 1):
            raise UserError("generator options need 0 <= beta1, beta2 < 1 and 0 < lr_gamma <= 1")

    def to_json(self) -> dict[str, object]:
        return asdict(self)

    @property
    def digest(self) -> str:
        return config_digest(self.to_json())

    def with_options(self, raw: dict[str, object]) -> "GeneratorConfig":
        """Options as strings (from ``--opt k=v``) or values, typed by the defaults."""
        known = {f.name: getattr(self, f.name) for f in fields(self)}
        typed = {}
        for key, value in raw.items():
            if key not in known:
                raise UserError(f"unknown generator option {key!r}; options: {', '.join(known)}")
            typed[key] = coerce(f"generator option {key}", value, known[key])
            if isinstance(known[key], float) and isinstance(typed[key], int) and not isinstance(typed[key], bool):
                typed[key] = float(typed[key])
        return replace(self, **typed)

    @classmethod
    def from_json(cls, raw: dict[str, object]) -> "GeneratorConfig":
        return cls().with_options(dict(raw))

    def check_image(self, shape: tuple[int, ...]) -> None:
        channels, height, width = (int(s) for s in shape)
        step = 2 ** self.n_down
        if height % step or width % step:
            raise UserError(
                f"the generator needs image sides divisible by {step} ({self.n_down} downsamplings); "
                f"these images are {height}x{width}"
            )
        if channels < 1:
            raise UserError(f"images with {channels} channels cannot be generated")


def _down(size: int) -> int:
    """Side after a 4x4 convolution with stride 2 and padding 1."""
    return (size - 2) // 2 + 1


class ResBlock(nn.Module):
    """conv-IN-ReLU-conv-IN plus the input."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(channels, channels, 3, padding=1)
        self.conv2 = nn.Conv2d(channels, channels, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = F.relu(F.instance_norm(self.conv1(x)))
        return x + F.instance_norm(self.conv2(h))


def adain(x: torch.Tensor, scale: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
    """Instance-normalise each channel of each image, then apply that image's scale and bias."""
    return F.instance_norm(x) * scale[:, :, None, None] + bias[:, :, None, None]


class AdaResBlock(nn.Module):
    """A residual block whose two normalisations are AdaIN with externally supplied parameters."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.channels = channels
        self.conv1 = nn.Conv2d(channels, channels, 3, padding=1)
        self.conv2 = nn.Conv2d(channels, channels, 3, padding=1)

    def forward(self, x: torch.Tensor, params: torch.Tensor) -> torch.Tensor:
        s1, b1, s2, b2 = params.split(self.channels, dim=1)
        h = F.relu(adain(self.conv1(x), s1, b1))
        return x + adain(self.conv2(h), s2, b2)


class ContentEncoder(nn.Module):
    def __init__(self, channels: int, config: GeneratorConfig) -> None:
        super().__init__()
        dim = config.dim
        layers: list[nn.Module] = [nn.Conv2d(channels, dim, 7, padding=3), nn.InstanceNorm2d(dim), nn.ReLU()]
        for _ in range(config.n_down):
            layers += [nn.Conv2d(dim, dim * 2, 4, stride=2, padding=1), nn.InstanceNorm2d(dim * 2), nn.ReLU()]
            dim *= 2
        layers += [ResBlock(dim) for _ in range(config.n_res)]
        self.net = nn.Sequential(*layers)
        self.out_channels = dim

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class StyleEncoder(nn.Module):
    """Downsamplings without normalisation (it would wash out the style), global pooling, 1x1 conv."""

    def __init__(self, channels: int, size: int, config: GeneratorConfig) -> None:
        super().__init__()
        dim = config.dim
        layers: list[nn.Module] = [nn.Conv2d(channels, dim, 7, padding=3), nn.ReLU()]
        for i in range(config.style_downs):
            if size < 2:  # small images: stop before the map vanishes
                break
            out = dim * 2 if i < 2 else dim
            layers += [nn.Conv2d(dim, out, 4, stride=2, padding=1), nn.ReLU()]
            dim, size = out, _down(size)
        layers += [nn.AdaptiveAvgPool2d(1), nn.Conv2d(dim, config.style_dim, 1)]
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x).flatten(1)


class Decoder(nn.Module):
    """AdaIN residual blocks (parameters from an MLP on the style code), upsamplings, tanh."""

    def __init__(self, channels: int, content_channels: int, config: GeneratorConfig) -> None:
        super().__init__()
        dim = content_channels
        self.blocks = nn.ModuleList(AdaResBlock(dim) for _ in range(config.n_res))
        self.n_params = 4 * dim * config.n_res
        self.mlp = nn.Sequential(
            nn.Linear(config.style_dim, config.mlp_dim), nn.ReLU(),
            nn.Linear(config.mlp_dim, config.mlp_dim), nn.ReLU(),
            nn.Linear(config.mlp_dim, max(self.n_params, 1)),
        )
        layers: list[nn.Module] = []
        for _ in range(config.n_down):
            layers += [
                nn.Upsample(scale_factor=2, mode="nearest"),
                nn.Conv2d(dim, dim // 2, 5, padding=2),
                nn.GroupNorm(1, dim // 2),  # layer normalisation over channels and space
                nn.ReLU(),
            ]
            dim //= 2
        layers += [nn.Conv2d(dim, channels, 7, padding=3), nn.Tanh()]
        self.up = nn.Sequential(*layers)

    def forward(self, content: torch.Tensor, style: torch.Tensor) -> torch.Tensor:
        params = self.mlp(style)
        h = content
        for block, p in zip(self.blocks, params.split(4 * content.shape[1], dim=1)):
            h = block(h, p)
        return self.up(h)


class Discriminator(nn.Module):
    """LSGAN patch discriminator: stride-2 4x4 convolutions while the map is at least 4 wide
    (3x3 stride-1 after that, so 8x8 images fit), leaky ReLU, a 1x1 convolution to one score map."""

    def __init__(self, channels: int, size: int, config: GeneratorConfig) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        cin, cout = channels, config.dis_dim
        for _ in range(config.dis_layers):
            if size >= 4:
                layers.append(nn.Conv2d(cin, cout, 4, stride=2, padding=1))
                size = _down(size)
            else:
                layers.append(nn.Conv2d(cin, cout, 3, padding=1))
            layers.append(nn.LeakyReLU(0.2))
            cin, cout = cout, cout * 2
        layers.append(nn.Conv2d(cin, 1, 1))
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class Munit(nn.Module):
    """The generator (content encoder, style encoder, decoder) and its discriminator."""

    def __init__(self, image_shape: tuple[int, int, int], config: GeneratorConfig) -> None:
        super().__init__()
        config.check_image(image_shape)
        channels, height, width = (int(s) for s in image_shape)
        self.config, self.image_shape = config, (channels, height, width)
        self.content = ContentEncoder(channels, config)
        self.style = StyleEncoder(channels, min(height, width), config)
        self.decoder = Decoder(channels, self.content.out_channels, config)
        self.dis = Discriminator(channels, min(height, width), config)

    def generator_parameters(self) -> list[nn.Parameter]:
        return [*self.content.parameters(), *self.style.parameters(), *self.decoder.parameters()]

    def random_style(self, n: int, generator: torch.Generator, device: torch.device, dtype: torch.dtype = torch.float32) -> torch.Tensor:
        return torch.randn(n, self.config.style_dim, generator=generator, device=device, dtype=dtype)

    def translate(self, x: torch.Tensor, style: torch.Tensor) -> torch.Tensor:
        """Images in [-1, 1] redrawn with the given style codes (the content is kept)."""
        return self.decoder(self.content(x), style)


def _init_weights(module: nn.Module) -> None:
    """He (fan-in) normal weights and zero biases for the generator's convolutions and MLP, so that
    activations, and with them the AdaIN parameters' dependence on the style code, keep their scale
    through the layers from the start (PyTorch's default init shrinks the MLP's output ~10x)."""
    if isinstance(module, (nn.Conv2d, nn.Linear)):
        nn.init.kaiming_normal_(module.weight, nonlinearity="relu")
        nn.init.zeros_(module.bias)


def build_munit(image_shape: tuple[int, int, int], config: GeneratorConfig, seed: int) -> Munit:
    """A freshly initialised model; the initialisation is seeded without touching the global RNG."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = Munit(image_shape, config)
        for part in (model.content, model.style, model.decoder):
            part.apply(_init_weights)
        return model
