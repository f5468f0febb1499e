"""Models: importing this package registers tailbench's architectures in timm's registry."""

from tailbench.models import cifar_resnet  # noqa: F401  (registration side effects)
from tailbench.models.factory import create_model

__all__ = ["create_model"]
