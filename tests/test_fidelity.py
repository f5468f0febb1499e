"""docs/FIDELITY.md is true of the code: every reference constant it lists has the value it says,
and every row of its comparison names the reference, tailbench's place, a status and a reason."""

from __future__ import annotations

import ast
import importlib
import re
from pathlib import Path

import pytest

from tailbench.recipes.recipe import load_recipe

DOC = Path(__file__).resolve().parents[1] / "docs" / "FIDELITY.md"
STATUSES = {"same", "fixed", "departure"}


def table_rows(heading: str) -> list[list[str]]:
    """The body rows of the first table under `## heading`, as stripped cells."""
    text = DOC.read_text()
    section = text.split(f"## {heading}\n", 1)[1].split("\n## ", 1)[0]
    lines = [line for line in section.splitlines() if line.startswith("|")]
    assert len(lines) > 2, f"no table under {heading!r}"
    return [[cell.strip() for cell in re.split(r"(?<!\\)\|", line)[1:-1]] for line in lines[2:]]


def value_of(name: str) -> object:
    """`module:object.attr["key"]` or `recipe:NAME.field`."""
    kind, _, path = name.partition(":")
    if kind == "recipe":
        recipe, _, field = path.partition(".")
        return getattr(load_recipe(recipe), field)
    match = re.fullmatch(r"([\w.]+)((?:\[[^\]]+\])*)", path)
    assert match, f"malformed constant name {name!r}"
    dotted, subscripts = match.groups()
    head, *attrs = dotted.split(".")
    value: object = importlib.import_module(kind)
    for attr in [head, *attrs]:
        value = getattr(value, attr)
    for key in re.findall(r"\[([^\]]+)\]", subscripts):
        value = value[ast.literal_eval(key)]  # type: ignore[index]
    return value


CONSTANTS = table_rows("Reference constants")


@pytest.mark.parametrize("row", CONSTANTS, ids=[row[0] for row in CONSTANTS])
def test_each_documented_reference_constant_is_what_the_code_holds(row):
    assert len(row) == 2, f"a constant row has two cells: {row}"
    name, shown = (cell.strip("`") for cell in row)
    documented = ast.literal_eval(shown)
    actual = value_of(name)
    if isinstance(documented, tuple):
        actual = tuple(actual)  # type: ignore[arg-type]
    assert actual == documented, f"{name} is {actual!r} in the code, {documented!r} in docs/FIDELITY.md: change both together"


def test_every_comparison_row_is_complete():
    rows = table_rows("Comparison")
    assert len(rows) >= 25
    for row in rows:
        assert len(row) == 5, f"five cells expected: {row}"
        item, reference, ours, status, why = row
        assert item and reference and ours, row
        assert status in STATUSES, f"{item}: status {status!r} is not one of {sorted(STATUSES)}"
        assert why or status == "same", f"{item}: a {status} row says why"

