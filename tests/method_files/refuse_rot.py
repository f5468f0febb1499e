"""A method part that fails on purpose: it refuses datasets whose nuisance is rotation, with a
UserError in `prepare`, so a sweep over digits-lt and digits-rot-lt has failing runs to report."""

from tailbench.errors import UserError
from tailbench.methods import MethodPart, register_method


@register_method("refuse_rot")
class RefuseRot(MethodPart):
    kind = "augmentation"
    description = "changes nothing; refuses datasets whose nuisance is rotation (a test's failing run)"

    def prepare(self, data):
        if data.nuisance == "rot":
            raise UserError("refuse_rot cannot train on a rotated dataset")
