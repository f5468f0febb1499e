"""Dataset registry. Importing this package registers every built-in dataset."""

from tailbench.datasets import digits, fashion_mnist  # noqa: F401  (registration side effects)
from tailbench.datasets import cifar, gtsrb, kuzushiji, synthetic, tinyimagenet  # noqa: F401  (registration side effects)
from tailbench.datasets.base import DatasetBuilder, LongTailedData, Split
from tailbench.datasets.registry import dataset_names, get_dataset, register_dataset

__all__ = ["DatasetBuilder", "LongTailedData", "Split", "dataset_names", "get_dataset", "register_dataset"]
