"""Per-class invariance: eKLD and argmax consistency under a nuisance family.

eKLD(c) = mean over images x of class c and transforms t of KL(p(.|x) || p(.|t(x))), the
original prediction first (Zhou et al., ICLR 2022). Each image is paired with transforms of
itself (the official code paired different images of a class). When a dataset bakes a fixed
nuisance draw into its images, t is applied to the image before that draw; x is then, by the
recipe's `ekld_protocol`, the clean image (`clean`, the reference's choice: x is the identity
member of the family) or the image with its draw (`drawn`: x and t(x) are two draws of the same
nuisance on the same object). Every transform is drawn before any is applied,
so the result does not depend on the evaluation batch size; pairs then stream through in
batches: memory is bounded by the batch size, not by the number of transforms.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass

import torch
import torch.nn as nn

from tailbench.benchmarks.evaluation import predict_log_probs, predict_unit
from tailbench.benchmarks.runtime import Runtime
from tailbench.methods import ComposedMethod
from tailbench.nuisance import NuisanceFamily


@dataclass
class Invariance:
    ekld: torch.Tensor  # [C] float64, NaN for classes without test images
    consistency: torch.Tensor  # [C] fraction of pairs whose argmax is unchanged
    images: torch.Tensor  # [C] images sampled per class
    chosen: torch.Tensor  # [M] test-set positions of the sampled images, ascending
    image_ekld: torch.Tensor  # [M] float64: each sampled image's mean KL over its transforms
    image_consistency: torch.Tensor  # [M] float64: each sampled image's share of unchanged argmaxes


def family_seed(seed: int, family: str) -> int:
    return (seed * 1_000_003 + zlib.crc32(family.encode())) % (2**63)


def sample_per_class(labels: torch.Tensor, num_classes: int, per_class: int, generator: torch.Generator) -> torch.Tensor:
    """Up to per_class positions of each class, drawn without replacement (all when fewer)."""
    chosen = []
    labels_cpu = labels.cpu()
    for c in range(num_classes):
        members = torch.nonzero(labels_cpu == c).flatten()
        chosen.append(members[torch.randperm(members.numel(), generator=generator)[:per_class]])
    return torch.cat(chosen).sort().values.to(labels.device)


@torch.inference_mode()
def measure_invariance(
    method: ComposedMethod,
    model: nn.Module,
    family: NuisanceFamily,
    originals: torch.Tensor,
    sources: torch.Tensor,
    labels: torch.Tensor,
    num_classes: int,
    *,
    images_per_class: int,
    transforms: int,
    runtime: Runtime,
    seed: int,
    protocol: str,
) -> Invariance:
    """originals: uint8 images as evaluated; sources: the uint8 images t is applied to (same order);
    protocol: "clean" (x = sources) or "drawn" (x = originals)."""
    model.eval()
    seed = family_seed(seed, family.name)
    chosen = sample_per_class(labels, num_classes, images_per_class, torch.Generator().manual_seed(seed))
    device = labels.device
    start_images = {"clean": sources, "drawn": originals}[protocol]
    base = predict_log_probs(method, model, start_images[chosen], runtime)  # [M, C]
    chosen_labels = labels[chosen]
    total_pairs = chosen.numel() * transforms
    params = family.sample(total_pairs, torch.Generator(device=device).manual_seed(seed))
    kl_sum = torch.zeros(num_classes, dtype=torch.float64, device=device)
    same_sum = torch.zeros(num_classes, dtype=torch.float64, device=device)
    # Per image as well as per class: the class sums keep their own order of additions, so the
    # per-class numbers do not depend on the per-image ones.
    image_kl = torch.zeros(chosen.numel(), dtype=torch.float64, device=device)
    image_same = torch.zeros(chosen.numel(), dtype=torch.float64, device=device)
    batch_size = runtime.eval_batch_size
    for start in range(0, total_pairs, batch_size):
        pair = torch.arange(start, min(start + batch_size, total_pairs), device=device)
        image = pair // transforms
        x = sources[chosen[image]].float().div_(255.0)
        transformed = predict_unit(method, model, family.apply(x, params[start : start + batch_size]), runtime)
        p = base[image]
        kl = (p.exp() * (p - transformed)).sum(1).double().clamp_min_(0.0)  # >= 0 up to rounding
        same = (p.argmax(1) == transformed.argmax(1)).double()
        kl_sum.index_add_(0, chosen_labels[image], kl)
        same_sum.index_add_(0, chosen_labels[image], same)
        image_kl.index_add_(0, image, kl)
        image_same.index_add_(0, image, same)
    images = torch.bincount(chosen_labels, minlength=num_classes)
    pairs = (images * transforms).double()
    return Invariance(
        ekld=(kl_sum / pairs).cpu(), consistency=(same_sum / pairs).cpu(), images=images.cpu(), chosen=chosen.cpu(),
        image_ekld=(image_kl / transforms).cpu(), image_consistency=(image_same / transforms).cpu(),
    )
