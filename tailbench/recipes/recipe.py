"""Training recipes: one YAML per benchmark, overridable from the command line."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path

import yaml

from tailbench.errors import UserError

RECIPE_DIR = Path(__file__).parent
RECIPE_OVERRIDES = ("epochs", "batch_size", "lr", "ekld_transforms", "ekld_protocol")  # what `tailbench run` flags may override

# Which image x an eKLD pair starts from (KL(p(.|x) || p(.|t(x)))); t is always applied to the
# clean image, so both protocols pair an image with transforms of itself.
#   clean: x is the clean test image (the identity member of the family: angle 0, background 0,
#          no dilation), as the reference code does; the paper recipes' default.
#   drawn: x is the test image with its fixed nuisance draw, as evaluated for accuracy.
# On datasets without a fixed nuisance draw the two are the same.
EKLD_PROTOCOLS = ("clean", "drawn")
LEGACY_RECIPE_FIELDS = {"ekld_protocol": "drawn"}  # what records made before a field existed meant


@dataclass(frozen=True)
class Recipe:
    name: str
    model: str
    epochs: int
    batch_size: int
    lr: float
    momentum: float
    weight_decay: float
    nesterov: bool
    warmup_epochs: int
    milestones: tuple[int, ...]
    factors: tuple[float, ...]  # lr multiplier in force after each milestone
    augment: tuple[str, ...]
    ekld_images_per_class: int
    ekld_transforms: int
    ekld_protocol: str
    overrides: dict[str, object] = field(default_factory=dict)

    @property
    def first_lr_step(self) -> int:
        """The epoch at which the lr first decays: where DRS, DRW and delayed GIT switch on."""
        return self.milestones[0] if self.milestones else self.epochs

    def lr_factor(self, epoch: int) -> float:
        if epoch < self.warmup_epochs:
            return (epoch + 1) / self.warmup_epochs
        factor = 1.0
        for milestone, value in zip(self.milestones, self.factors):
            if epoch >= milestone:
                factor = value
        return factor

    def to_json(self) -> dict:
        return asdict(self)


def recipe_names() -> list[str]:
    return sorted(p.stem for p in RECIPE_DIR.glob("*.yaml"))


def load_recipe(name: str) -> Recipe:
    path = RECIPE_DIR / f"{name}.yaml"
    if not path.is_file():
        raise UserError(f"unknown recipe {name!r}; known recipes: {', '.join(recipe_names())}")
    raw = yaml.safe_load(path.read_text())
    try:
        recipe = Recipe(
            name=name,
            model=str(raw["model"]),
            epochs=int(raw["epochs"]),
            batch_size=int(raw["batch_size"]),
            lr=float(raw["optimizer"]["lr"]),
            momentum=float(raw["optimizer"]["momentum"]),
            weight_decay=float(raw["optimizer"]["weight_decay"]),
            nesterov=bool(raw["optimizer"].get("nesterov", False)),
            warmup_epochs=int(raw["schedule"]["warmup_epochs"]),
            milestones=tuple(int(m) for m in raw["schedule"]["milestones"]),
            factors=tuple(float(f) for f in raw["schedule"]["factors"]),
            augment=tuple(str(a) for a in raw.get("augment") or ()),
            ekld_images_per_class=int(raw["eval"]["ekld_images_per_class"]),
            ekld_transforms=int(raw["eval"]["ekld_transforms"]),
            ekld_protocol=str(raw["eval"]["ekld_protocol"]),
        )
    except (KeyError, TypeError, ValueError) as error:
        raise UserError(f"recipe {path} is malformed ({type(error).__name__}: {error})") from None
    if recipe.ekld_protocol not in EKLD_PROTOCOLS:
        raise UserError(f"recipe {path}: eval.ekld_protocol {recipe.ekld_protocol!r} is not one of {', '.join(EKLD_PROTOCOLS)}")
    if len(recipe.milestones) != len(recipe.factors):
        raise UserError(f"recipe {path}: schedule.milestones and schedule.factors differ in length")
    return recipe


def with_overrides(recipe: Recipe, **overrides: object) -> Recipe:
    """Apply command-line overrides. A new epoch count rescales the warmup and the lr milestones
    proportionally, so the schedule keeps its shape (and DRS/DRW switch at the same fraction)."""
    given = {k: v for k, v in overrides.items() if v is not None}
    protocol = given.get("ekld_protocol")
    if protocol is not None and protocol not in EKLD_PROTOCOLS:
        raise UserError(f"--ekld-protocol {str(protocol)[:30]!r} is not one of {', '.join(EKLD_PROTOCOLS)} (clean: x is the clean test image; drawn: x keeps its nuisance draw)")
    if protocol == recipe.ekld_protocol:
        del given["ekld_protocol"]  # the recipe's own: not an override, so the run stays in the recipe's table
    for key, value in given.items():
        if isinstance(value, (int, float)) and not isinstance(value, bool) and value <= 0:
            raise UserError(f"--{key.replace('_', '-')} must be positive, got {value}")
    changes: dict[str, object] = dict(given)
    epochs = given.get("epochs")
    if epochs is not None and epochs != recipe.epochs:
        scale = int(epochs) / recipe.epochs
        changes["milestones"] = tuple(max(1, round(m * scale)) for m in recipe.milestones)
        warmup = round(recipe.warmup_epochs * scale)
        changes["warmup_epochs"] = max(1, warmup) if recipe.warmup_epochs else 0
    merged = {**recipe.to_json(), **changes, "overrides": {**recipe.overrides, **given}}
    merged["milestones"] = tuple(merged["milestones"])
    merged["factors"] = tuple(merged["factors"])
    merged["augment"] = tuple(merged["augment"])
    return Recipe(**merged)
