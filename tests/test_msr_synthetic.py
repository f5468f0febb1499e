"""MSR's synthetic check (Zhou et al., ICLR 2021): meta-learning recovers convolutional sharing.

Every task is a random 1-D convolution filter f (3 taps, "valid": 12 inputs, 10 outputs); its
data are random inputs x and targets y = f * x. A fully connected reparameterized layer
(vec(W) = U v, U = I at the start: the ordinary layer) adapts v in one SGD step on 5 support
pairs and is scored on 20 query pairs. With fewer support pairs than inputs, an unshared layer
cannot find the filter; meta-learning U across tasks has to tie the weights the way a
convolution does. Measured: the adapted W of new tasks is (or is not) a Toeplitz matrix.
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch.func import grad, vmap

from tailbench.msr.episodes import Episodes
from tailbench.msr.layers import SharedLinear
from tailbench.msr.meta import InnerLoop, adapt, meta_objective

INPUTS, TAPS = 12, 3
OUTPUTS = INPUTS - TAPS + 1
SUPPORT, QUERY = 5, 20


@pytest.fixture(autouse=True)
def one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny matrices on a shared CPU: far faster on one thread
    yield
    torch.set_num_threads(before)


def convolution_matrices(filters: torch.Tensor) -> torch.Tensor:
    """[T, taps] filters -> [T, outputs, inputs] matrices of the valid 1-D convolution."""
    rows = torch.arange(OUTPUTS)
    matrices = torch.zeros(filters.shape[0], OUTPUTS, INPUTS)
    for tap in range(TAPS):
        matrices[:, rows, rows + tap] = filters[:, tap : tap + 1]
    return matrices


def toeplitz_residual(weights: torch.Tensor) -> torch.Tensor:
    """Per matrix, ||W - P(W)|| / ||W|| with P the projection onto valid-convolution matrices
    (each of the 3 diagonals replaced by its mean, every other entry 0)."""
    rows = torch.arange(OUTPUTS)
    taps = torch.stack([weights[:, rows, rows + tap].mean(1) for tap in range(TAPS)], 1)
    projected = convolution_matrices(taps)
    return (weights - projected).flatten(1).norm(dim=1) / weights.flatten(1).norm(dim=1)


def conv_tasks(tasks: int, generator: torch.Generator) -> Episodes:
    matrices = convolution_matrices(torch.randn(tasks, TAPS, generator=generator))
    support_x = torch.randn(tasks, SUPPORT, INPUTS, generator=generator)
    query_x = torch.randn(tasks, QUERY, INPUTS, generator=generator)
    apply = lambda x: torch.einsum("toi,tni->tno", matrices, x)
    return Episodes(support_x, apply(support_x), query_x, apply(query_x))


def adapted_weights(layer: SharedLinear, inner: InnerLoop, params: dict, episodes: Episodes) -> torch.Tensor:
    def one(support_x, support_y):
        v = adapt(layer, F.mse_loss, inner, params, support_x, support_y)["v"]
        return (params["U"] @ v).view(OUTPUTS, INPUTS)

    with torch.no_grad():
        return vmap(one)(episodes.support_x, episodes.support_y)


def meta_train(order: int, outer_steps: int) -> tuple[dict, SharedLinear, InnerLoop]:
    torch.manual_seed(0)
    layer = SharedLinear(INPUTS, OUTPUTS, bias=False)
    inner = InnerLoop(("v",), steps=1, lr=0.1, order=order)
    params = {name: p.detach().clone().requires_grad_(True) for name, p in layer.named_parameters()}
    optimizer = torch.optim.Adam(params.values(), lr=1e-3)
    generator = torch.Generator().manual_seed(1)
    for _ in range(outer_steps):
        episodes = conv_tasks(32, generator)
        grads, _ = grad(lambda p, e=episodes: meta_objective(layer, F.mse_loss, F.mse_loss, inner, p, e), has_aux=True)(params)
        for name, p in params.items():
            p.grad = grads[name]
        optimizer.step()
    return params, layer, inner


@pytest.mark.parametrize("order", [2, 1])
def test_meta_learned_sharing_makes_new_tasks_weights_toeplitz(order):
    new_tasks = conv_tasks(64, torch.Generator().manual_seed(99))  # filters never seen in meta-training
    start, layer, inner = meta_train(order, outer_steps=0)
    learned, _, _ = meta_train(order, outer_steps=500)

    assert torch.equal(start["U"], torch.eye(OUTPUTS * INPUTS))  # the ordinary layer, unshared
    before = toeplitz_residual(adapted_weights(layer, inner, start, new_tasks))
    after = toeplitz_residual(adapted_weights(layer, inner, learned, new_tasks))
    assert before.mean() > 0.9, before.mean()  # one step from 5 pairs: nothing like a convolution
    assert after.mean() < 0.15, after.mean()  # every new task's W is nearly a convolution
    assert after.max() < 0.4

    loss_before, _ = meta_objective(layer, F.mse_loss, F.mse_loss, inner, start, new_tasks)
    loss_after, _ = meta_objective(layer, F.mse_loss, F.mse_loss, inner, learned, new_tasks)
    assert loss_after < 0.2 * loss_before  # and it predicts the new tasks' queries
