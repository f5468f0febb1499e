"""MSR's meta-training with torch.func: inner loop on the fast weights, outer loop on the rest.

For each task of an outer batch (``vmap`` over tasks), the fast weights (for the image episodes:
the stem's filter parameters v and the classifier) start from their meta-learned initial values
and take ``inner_steps`` SGD steps on the task's support loss (``torch.func.grad``); the adapted
model's loss on the task's query set is the task's meta-loss. Its gradient with respect to every
meta-parameter (the sharing matrix U, the fast weights' initial values, the rest of the model)
is again ``torch.func.grad``: second order through the inner steps, or first order (``order`` 1)
when the inner gradients are treated as constants (U still learns, through W = U v'). Adam
applies it, at ``sharing_lr`` for the stem's U_s (it has to travel from the identity to a tied
pattern) and ``meta_lr`` for the rest. All randomness after initialisation comes from one
generator, saved with the state.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Callable

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.func import functional_call, grad, vmap

from tailbench.asset_cache import config_digest
from tailbench.msr.episodes import Episodes, EpisodeSampler
from tailbench.msr.network import FAST, build_episode_net

STEM_SHARING = "stem.U"
Loss = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


@dataclass(frozen=True)
class MetaConfig:
    ways: int = 5
    shots: int = 5
    queries: int = 10
    tasks: int = 4
    steps: int = 300
    inner_steps: int = 3
    inner_lr: float = 0.1
    meta_lr: float = 1e-3
    sharing_lr: float = 1e-2
    order: int = 1
    copies: int = 4
    kernel: int = 3
    width: int = 32
    threshold: int = 100

    def to_json(self) -> dict[str, object]:
        return asdict(self)

    @property
    def digest(self) -> str:
        return config_digest(self.to_json())


@dataclass(frozen=True)
class InnerLoop:
    """How a task adapts: which weights, how many SGD steps, at what lr, and the derivative order."""

    fast: tuple[str, ...]
    steps: int
    lr: float
    order: int


def adapt(model: nn.Module, loss: Loss, inner: InnerLoop, params: dict[str, torch.Tensor],
          support_x: torch.Tensor, support_y: torch.Tensor) -> dict[str, torch.Tensor]:
    """One task's fast weights after the inner loop's SGD steps on its support set."""
    buffers = dict(model.named_buffers())
    slow = {name: p for name, p in params.items() if name not in inner.fast}

    def support_loss(fast: dict) -> torch.Tensor:
        return loss(functional_call(model, {**slow, **fast, **buffers}, (support_x,)), support_y)

    fast = {name: params[name] for name in inner.fast}
    for _ in range(inner.steps):
        step = grad(support_loss)(fast)
        if inner.order == 1:
            step = {name: g.detach() for name, g in step.items()}
        fast = {name: fast[name] - inner.lr * step[name] for name in fast}
    return fast


def meta_objective(model: nn.Module, loss: Loss, metric: Loss, inner: InnerLoop, params: dict[str, torch.Tensor],
                   episodes: Episodes) -> tuple[torch.Tensor, torch.Tensor]:
    """The mean query loss after adaptation over the episodes' tasks, and, detached,
    [that loss, the mean query metric]; differentiable in `params` with torch.func.grad."""
    buffers = dict(model.named_buffers())

    def task(support_x, support_y, query_x, query_y):
        adapted = {**params, **adapt(model, loss, inner, params, support_x, support_y)}
        out = functional_call(model, {**adapted, **buffers}, (query_x,))
        return loss(out, query_y), metric(out, query_y)

    losses, metrics = vmap(task)(episodes.support_x, episodes.support_y, episodes.query_x, episodes.query_y)
    mean = losses.mean()
    return mean, torch.stack([mean, metrics.mean()]).detach()


def accuracy(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return (logits.argmax(1) == y).float().mean()


class MetaTrainer:
    """Meta-trains the episode network on image episodes; ``sharing()`` is its stem's U_s."""

    def __init__(self, sampler: EpisodeSampler, image_shape: tuple[int, int, int], mean: torch.Tensor, std: torch.Tensor,
                 config: MetaConfig, seed: int) -> None:
        device = sampler.clean.device
        self.sampler, self.config, self.seed = sampler, config, seed
        self.net = build_episode_net(image_shape, config.ways, config.copies, config.kernel, config.width, mean, std, seed).to(device)
        self.inner = InnerLoop(FAST, config.inner_steps, config.inner_lr, config.order)
        self.params = {name: p.detach().clone().requires_grad_(True) for name, p in self.net.named_parameters()}
        rest = [p for name, p in self.params.items() if name != STEM_SHARING]
        self.optimizer = torch.optim.Adam(
            [{"params": [self.params[STEM_SHARING]], "lr": config.sharing_lr}, {"params": rest}], lr=config.meta_lr
        )
        self.rng = torch.Generator(device=device).manual_seed(seed)
        self.iteration = 0

    def step(self) -> torch.Tensor:
        """One outer update; returns [query loss, query accuracy] after adaptation, on the device."""
        episodes = self.sampler.sample(self.config.tasks, self.rng)
        objective = lambda params: meta_objective(self.net, F.cross_entropy, accuracy, self.inner, params, episodes)
        grads, metrics = grad(objective, has_aux=True)(self.params)
        for name, p in self.params.items():
            p.grad = grads[name]
        self.optimizer.step()
        self.iteration += 1
        return metrics

    def sharing(self) -> torch.Tensor:
        return self.params[STEM_SHARING].detach().clone()

    def state_dict(self) -> dict:
        return {
            "iteration": self.iteration,
            "params": {name: p.detach().clone() for name, p in self.params.items()},
            "optimizer": self.optimizer.state_dict(),
            "rng": self.rng.get_state(),
        }

    def load_state_dict(self, state: dict) -> None:
        self.iteration = int(state["iteration"])
        with torch.no_grad():
            for name, p in self.params.items():
                p.copy_(state["params"][name])
        self.optimizer.load_state_dict(state["optimizer"])
        self.rng.set_state(state["rng"].cpu())
