"""Turning a balanced official dataset into a long-tailed manifest."""

from __future__ import annotations

import numpy as np

from tailbench.datasets.manifest import Manifest, draw_without_replacement
from tailbench.errors import UserError


def long_tailed_manifest(
    dataset_id: str,
    class_names: list[str],
    source_totals: dict[str, list[int]],
    sizes_by_rank: list[int],
    *,
    seed: int,
    val_per_class: int,
    test_per_class: int | None = None,
    train_source: str = "train",
    test_source: str = "test",
    permute_classes: bool = True,
    random_images: bool = True,
    nuisance: dict[str, object] | None = None,
) -> Manifest:
    """Class c gets sizes_by_rank[rank(c)] training images; validation images come from the same
    file's unused images (balanced, val_per_class each); the test split is the whole test file
    unless test_per_class is set (then it too is drawn, disjointly, from the unused images when
    the test source is the train file).

    permute_classes: which class is the head is a seeded permutation (else class 0 is the head).
    random_images: images are a seeded random subset of each class (else the first ones in file order).
    """
    num_classes = len(class_names)
    if len(sizes_by_rank) != num_classes:
        raise ValueError("one size per class expected")
    rng = np.random.default_rng(seed)
    ranks = rng.permutation(num_classes) if permute_classes else np.arange(num_classes)
    sizes = [int(sizes_by_rank[int(ranks[c])]) for c in range(num_classes)]
    shared_test = test_source == train_source
    splits: dict[str, list[list[int]]] = {"train": [], "val": [], "test": []}
    for c in range(num_classes):
        counts = [sizes[c], val_per_class] + ([test_per_class or 0] if shared_test else [])
        total = source_totals[train_source][c]
        if sum(counts) > total:
            raise UserError(
                f"{dataset_id}: class {class_names[c]!r} has {total} images, fewer than the "
                f"{sum(counts)} its train/val/test splits need; lower the sizes or val_per_class"
            )
        if random_images:
            blocks = draw_without_replacement(rng, total, counts)
        else:
            edges = np.cumsum([0] + counts)
            blocks = [list(range(int(a), int(b))) for a, b in zip(edges[:-1], edges[1:])]
        splits["train"].append(blocks[0])
        splits["val"].append(blocks[1])
        if shared_test:
            splits["test"].append(blocks[2])
        elif test_per_class is None:
            splits["test"].append(list(range(source_totals[test_source][c])))
        else:
            splits["test"].append(draw_without_replacement(rng, source_totals[test_source][c], [test_per_class])[0])
    return Manifest(
        dataset_id=dataset_id,
        class_names=list(class_names),
        source_totals={k: list(v) for k, v in source_totals.items()},
        split_sources={"train": train_source, "val": train_source, "test": test_source},
        splits=splits,
        nuisance=nuisance,
        notes={"train_sizes_by_rank": list(sizes_by_rank), "split_seed": seed},
    )
