"""Predictions and per-class accuracy on a split."""

from __future__ import annotations

import torch
import torch.nn as nn

from tailbench.benchmarks.runtime import Runtime
from tailbench.methods import ComposedMethod


@torch.inference_mode()
def predict_unit(method: ComposedMethod, model: nn.Module, x: torch.Tensor, runtime: Runtime) -> torch.Tensor:
    """Log-probabilities for one batch of [0, 1] float images, in the run's memory layout."""
    return method.predict(model, runtime.layout(x))


@torch.inference_mode()
def predict_log_probs(method: ComposedMethod, model: nn.Module, images: torch.Tensor, runtime: Runtime) -> torch.Tensor:
    """Log-probabilities for uint8 images, through the method's predict hook, in eval mode."""
    model.eval()
    size = runtime.eval_batch_size
    chunks = [predict_unit(method, model, images[i : i + size].float().div_(255.0), runtime) for i in range(0, images.shape[0], size)]
    return torch.cat(chunks) if chunks else torch.empty(0, device=images.device)


def per_class_accuracy(log_probs: torch.Tensor, labels: torch.Tensor, num_classes: int) -> torch.Tensor:
    """Accuracy of each class (NaN for a class with no images), as a float64 CPU tensor."""
    correct = (log_probs.argmax(1) == labels).double()
    hits = torch.zeros(num_classes, dtype=torch.float64, device=labels.device).index_add_(0, labels, correct)
    counts = torch.bincount(labels, minlength=num_classes).double()
    return (hits / counts).cpu()
