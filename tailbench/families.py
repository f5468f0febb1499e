"""Names of nuisance families that the dataset registry needs without loading torch (the families
themselves are in tailbench/nuisance.py)."""

# The invariance families measured on natural-image datasets (CIFAR, GTSRB, TinyImageNet).
NATURAL_FAMILIES: tuple[str, ...] = ("light", "rot15", "shift", "scale")
