"""Label smoothing as a tailbench loss part: one file, one registered class.

Run it without editing tailbench:

    tailbench run --method-file examples/label_smoothing.py --method ls+drs --dataset digits-lt
    tailbench run --method-file examples/label_smoothing.py --method ls --hp ls.eps=0.2 --dataset digits-lt

Label smoothing (Szegedy et al., "Rethinking the Inception Architecture for Computer Vision",
CVPR 2016) trains against the target (1 - eps) * one_hot(y) + eps / C instead of the one-hot
label. Per image, the cross-entropy with that target is
(1 - eps) * (-log p_y) + eps * mean_c(-log p_c).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from tailbench.methods import MethodPart, register_method


@register_method("ls")  # the name used in method specs: ls, ls+drs, ls+drw, ...
class LabelSmoothing(MethodPart):
    kind = "loss"  # a spec has exactly one loss, first: loss[+rule][+augmentation...]
    description = "cross-entropy against labels smoothed towards uniform: (1 - eps) one-hot + eps / C"
    paper = "Szegedy et al., CVPR 2016"
    hparams = {"eps": 0.1}  # defaults; `--hp ls.eps=0.2` overrides, typed like the default

    def loss(self, logits: torch.Tensor, y: torch.Tensor, weights: torch.Tensor | None) -> torch.Tensor:
        """logits [B, C] and labels [B] on the run's device; weights: per-class loss weights from
        the spec's rule (e.g. drw), or None. Whole-batch tensor code only: no Python loop, no .item()."""
        eps = float(self.hp["eps"])
        log_probs = F.log_softmax(logits, dim=1)
        nll = -log_probs.gather(1, y.unsqueeze(1)).squeeze(1)
        smooth = -log_probs.mean(dim=1)
        per_image = (1.0 - eps) * nll + eps * smooth
        if weights is None:
            return per_image.mean()
        w = weights[y]  # the weighted mean, as F.cross_entropy(weight=...) takes it
        return (w * per_image).sum() / w.sum()

    # Predictions default to softmax of the logits (MethodPart.to_log_probs): nothing to override.
