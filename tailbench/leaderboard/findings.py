"""The README's findings, made from the committed records: every method against its reference
method, benchmark by benchmark, paired over seeds, and what moved beyond the seed spread.

A method's reference is its spec without its augmentation and stage parts (`ce+drs+git` against
`ce+drs`, `ce+crt` against `ce`, the network it retrained), or `ce` for a spec without any
(`ce+drs`, `ldam+drw` against `ce`), so each row isolates what the added part does. Differences are paired by seed: mean difference, a 95 % t interval over the
shared seeds and the paired t-test's p-value (`stats.paired_seed_test`); with 3 seeds only a large,
consistent move clears it, which is what "beyond the seed spread" means here.

`python -m tailbench.leaderboard.findings [--results results] [--readme README.md] [--check]`
rewrites (or checks) the block between the README's findings markers.
"""

from __future__ import annotations

import argparse
import re
import sys
from dataclasses import dataclass
from pathlib import Path


from tailbench.errors import UserError
from tailbench.leaderboard.aggregate import Entry, entries
from tailbench.leaderboard.stats import ALPHA, paired_seed_test
from tailbench.results.records import UNRECORDED_CPU, iter_runs

BEGIN = "<!-- findings: made by `make findings` from results/; edit tailbench/leaderboard/templates/findings.md.j2, not this block -->"
END = "<!-- /findings -->"
BASELINE = "ce"
# What each recipe's tables are for, as a reader should take them (keyed by recipe name; a
# recipe with overridden numbers gets its name and overrides).
RECIPE_ROLES = {
    "fmnist": "the paper's recipe (Zhou et al.'s K49-LT recipe: ResNet-20, 50 epochs), where invariance transfer shows; made on the CPU by `scripts/reference_grid.sh` and committed as it grows",
    "fmnist-cpu": "a short-training check (ResNet-8, 10 epochs), not comparable with the paper's recipe: little lost invariance to restore",
}


@dataclass(frozen=True)
class Difference:
    """Method minus reference over their shared seeds."""

    reference: float
    value: float
    mean: float
    low: float | None  # 95 % t interval of the mean difference; None for fewer than 2 seeds
    high: float | None
    p: float | None
    seeds: int

    @property
    def clear(self) -> bool:
        return self.p is not None and self.p < ALPHA


@dataclass(frozen=True)
class Row:
    benchmark: str
    method: str
    reference: str
    family: str | None
    tail_ekld: Difference | None
    tail_consistency: Difference | None
    tail_accuracy: Difference | None
    balanced_accuracy: Difference | None
    across_machines: bool = False  # some seed's two records come from different known machine kinds
    keeps_features: bool = False  # the method changed only the classifier of its reference's network


def keeps_features(method: Entry, reference: str) -> bool:
    """Whether every record says the method started from its reference's own network (the same spec
    under the same recipe) and changed only what follows the features: a stage that kept BatchNorm
    frozen, or a prediction-time adjustment."""
    def kept(stages) -> bool:
        return (stages is not None and stages.representation.spec == reference and not stages.representation.recipe_changes
                and (stages.classifier is None or stages.classifier.frozen_batchnorm))
    return all(kept(run.record.stages) for run in method.runs)


def across_machines(method: Entry, reference: Entry) -> bool:
    """Whether the method's and its reference's records of some shared seed name different machine
    kinds (records that name no CPU model cannot say): their difference then holds the machines'
    float noise too, so it is not paired in the strict sense."""
    theirs = {run.seed: run.machine_kind for run in reference.runs}
    return any(seed in theirs and kind != theirs[seed] and UNRECORDED_CPU not in kind + theirs[seed]
               for seed, kind in ((run.seed, run.machine_kind) for run in method.runs))


def paired(method: Entry, reference: Entry, key: str) -> Difference | None:
    a, b = reference.summaries, method.summaries
    if key not in a or key not in b:
        return None
    x, y = a[key].dropna(), b[key].dropna()
    seeds = sorted(set(x.index) & set(y.index))
    if not seeds:
        return None
    test = paired_seed_test(y.to_dict(), x.to_dict(), higher_is_better=True, alpha=ALPHA)  # the direction only names the verdict
    mean = float((y[seeds] - x[seeds]).mean())
    return Difference(float(x[seeds].mean()), float(y[seeds].mean()), mean,
                      test.low if test else None, test.high if test else None, test.p_value if test else None, len(seeds))


def reference_spec(entry: Entry) -> str | None:
    """The spec without its augmentation and stage parts, or `ce` when it has none; None for `ce` itself."""
    parts = entry.runs[0].record.method.parts
    kept = "+".join(part.name for part in parts if part.kind not in ("augmentation", "stage"))
    if entry.method == BASELINE:
        return None
    return kept if kept != entry.method else BASELINE


def headline_family(entry: Entry) -> str | None:
    dataset = entry.runs[0].record.dataset
    return dataset.nuisance if dataset.nuisance in dataset.invariance_families else None


def rows(group: list[Entry]) -> list[Row]:
    by_method = {entry.method: entry for entry in group}
    found = []
    for entry in group:
        ref = by_method.get(reference_spec(entry) or "")
        if ref is None:
            continue
        family = headline_family(entry)
        found.append(Row(
            entry.benchmark, entry.method, ref.method, family,
            paired(entry, ref, f"tail_ekld_{family}") if family else None,
            paired(entry, ref, f"tail_consistency_{family}") if family else None,
            paired(entry, ref, "tail_accuracy"), paired(entry, ref, "balanced_accuracy"), across_machines(entry, ref),
            keeps_features(entry, ref.method),
        ))
    return found


MOVES = (  # (what, row attribute, scale, digits): the headline columns first, in the order the text gives them
    ("tail eKLD", "tail_ekld", 1.0, 3),
    ("tail consistency", "tail_consistency", 100.0, 1),
    ("tail-third accuracy", "tail_accuracy", 100.0, 1),
    ("balanced accuracy", "balanced_accuracy", 100.0, 1),
)
HEADLINE_MOVES = 3  # the README's verdicts are of the tail columns; FINDINGS.md names the moves of every column


def short_name(method: str) -> str:
    """The spec alone: changed hyper-parameters (`@part.key=value`) go to a footnote."""
    return method.split("@")[0]


def variants(found: list[Row]) -> dict[str, str]:
    """Method id -> footnote mark, for the ids whose short name hides changed hyper-parameters."""
    marks: dict[str, str] = {}
    for row in found:
        if "@" in row.method and row.method not in marks:
            marks[row.method] = f"v{len(marks) + 1}"
    return marks


def moves(found: list[Row], marks: dict[str, str]) -> list[str]:
    """One sentence per metric and direction that some method moves beyond the seed spread."""
    sentences = []
    for what, attribute, scale, digits in MOVES:
        for word, sign in (("falls", -1), ("rises", 1)):
            cases = [f"`{display(r.method, marks)}` on {dataset_of(r.benchmark)} ({format_delta(getattr(r, attribute), scale, digits).strip('*')})"
                     for r in found if (d := getattr(r, attribute)) is not None and d.clear and sign * d.mean > 0]
            if cases:
                sentences.append(f"{what[0].upper()}{what[1:]} {word} for " + ", ".join(cases) + ".")
    return sentences


def verdicts(found: list[Row], marks: dict[str, str]) -> list[str]:
    """One line per method: on how many of its benchmarks each tail column moves beyond the seed
    spread, and which way."""
    lines = []
    for method, reference in dict.fromkeys((r.method, r.reference) for r in found):
        mine = [r for r in found if (r.method, r.reference) == (method, reference)]
        parts = []
        for what, attribute, _, _ in MOVES[:HEADLINE_MOVES]:
            measured = [d for r in mine if (d := getattr(r, attribute)) is not None]
            falls = sum(1 for d in measured if d.clear and d.mean < 0)
            rises = sum(1 for d in measured if d.clear and d.mean > 0)
            moved = [f"{word} on {n} of {len(measured)}" for word, n in (("falls", falls), ("rises", rises)) if n]
            if measured:
                parts.append(f"{what} {' and '.join(moved) if moved else 'holds'}")
        if parts:
            lines.append(f"`{display(method, marks)}` against `{reference}`: " + "; ".join(parts) + ".")
    return lines


def classifier_only(found: list[Row], marks: dict[str, str]) -> dict[str, object]:
    """How often the methods that change only their reference network's classifier move each tail
    column beyond the seed spread: whether invariance lives in the features they leave alone."""
    kept = [r for r in found if r.keeps_features]
    def clear(attribute: str) -> int:
        return sum(1 for r in kept if (d := getattr(r, attribute)) is not None and d.clear)
    return {"methods": list(dict.fromkeys(display(r.method, marks) for r in kept)), "rows": len(kept),
            "tail_accuracy": clear("tail_accuracy"), "tail_consistency": clear("tail_consistency"), "tail_ekld": clear("tail_ekld")}


def display(method: str, marks: dict[str, str]) -> str:
    return short_name(method) + (f" ({marks[method]})" if method in marks else "")


def dataset_of(benchmark: str) -> str:
    return benchmark.split("@")[0]


def pivot(found: list[Row], marks: dict[str, str]) -> tuple[list[str], list[dict]]:
    """Benchmarks (columns) and one row per (method, reference) with a cell per benchmark."""
    benchmarks = list(dict.fromkeys(dataset_of(r.benchmark) for r in found))
    table: dict[tuple[str, str], dict] = {}
    for r in found:
        row = table.setdefault((r.method, r.reference), {"method": display(r.method, marks), "reference": r.reference, "cells": {}})
        row["cells"][dataset_of(r.benchmark)] = r
    for row in table.values():
        counts = sorted({d.seeds for r in row["cells"].values() for d in (r.tail_ekld, r.tail_accuracy) if d})
        row["seeds"] = "—" if not counts else str(counts[0]) if len(counts) == 1 else f"{counts[0]}–{counts[-1]}"
    return benchmarks, list(table.values())


def recipe_label(entry: Entry) -> str:
    recipe = entry.runs[0].record.recipe
    overrides = ", ".join(f"{k}={v}" for k, v in sorted(recipe.overrides.items()))
    name = f"`{recipe.name}`" + (f" with {overrides}" if overrides else "")
    role = RECIPE_ROLES.get(recipe.name) if not overrides else None
    return f"{name}: {role}" if role else name


def recipe_key(benchmark: str) -> str:
    """The benchmark id without its dataset: '' for a dataset's own recipe, else '@recipe@key=value'."""
    return benchmark[benchmark.index("@"):] if "@" in benchmark else ""


def recipe_rank(benchmark: str) -> tuple:
    """Where a benchmark's tables go: a dataset's own recipe (the paper's) first, recipes with
    overridden numbers next, other named recipes (the `fmnist-cpu` smoke check) last."""
    key = recipe_key(benchmark)
    return (key != "", key.count("@") == 1, key, benchmark)


def sections(by_benchmark: dict[str, list[Entry]]) -> list[dict]:
    grouped: dict[str, list[list[Entry]]] = {}
    for benchmark, group in by_benchmark.items():
        grouped.setdefault(recipe_key(benchmark), []).append(group)
    found = []
    for key in sorted(grouped, key=lambda k: recipe_rank(grouped[k][0][0].benchmark)):
        groups = grouped[key]
        all_entries = [e for g in groups for e in g]
        spearman = [e.metric(f"spearman_ekld_count_{f}").mean for e in all_entries if (f := headline_family(e))]
        spearman = [v for v in spearman if v is not None]
        found.append({
            "label": recipe_label(all_entries[0]),
            "protocol": all_entries[0].runs[0].record.recipe.ekld_protocol,
            "records": sum(len(e.runs) for e in all_entries),
            "commits": sorted({(r.record.provenance.git.commit or "unknown")[:7] for e in all_entries for r in e.runs}),
            "benchmarks": [g[0].benchmark for g in groups],
            "rows": (section_rows := [r for g in groups for r in rows(g)]),
            "marks": (marks := variants(section_rows)),
            "moves": moves(section_rows, marks),
            "verdicts": verdicts(section_rows, marks),
            "pivot": pivot(section_rows, marks),
            "classifier_only": classifier_only(section_rows, marks),
            "across_machines": [display(r.method, marks) + f" on {dataset_of(r.benchmark)}" for r in section_rows if r.across_machines],
            "spearman_negative": sum(v < 0 for v in spearman), "spearman_total": len(spearman),
        })
    return found


def render(by_benchmark: dict[str, list[Entry]], template: str = "findings.md.j2") -> str:
    """The findings as Markdown: `findings.md.j2` is the README's block, `findings_full.md.j2` the leaderboard's FINDINGS.md."""
    import jinja2

    from tailbench.leaderboard.html import TEMPLATES

    env = jinja2.Environment(loader=jinja2.FileSystemLoader(TEMPLATES), undefined=jinja2.StrictUndefined,
                             trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=True)
    env.filters["delta"] = format_delta
    env.filters["value"] = format_value
    env.filters["display"] = display
    text = env.get_template(template).render(sections=sections(by_benchmark), alpha=ALPHA)
    return re.sub(r"\n{3,}", "\n\n", text).strip() + "\n"


def format_value(d: Difference | None, scale: float = 1.0, digits: int = 3) -> str:
    return "—" if d is None else f"{d.reference * scale:.{digits}f} → {d.value * scale:.{digits}f}"


def format_delta(d: Difference | None, scale: float = 1.0, digits: int = 3) -> str:
    if d is None:
        return "—"
    text = f"{d.mean * scale:+.{digits}f}"
    if d.low is not None:
        text += f" [{d.low * scale:+.{digits}f}, {d.high * scale:+.{digits}f}]"
    return f"**{text}**" if d.clear else text


def splice(readme: str, block: str) -> str:
    if readme.count(BEGIN) != 1 or readme.count(END) != 1 or readme.index(BEGIN) > readme.index(END):
        raise UserError(f"the README must hold the findings markers once each, in order: {BEGIN!r} ... {END!r}")
    head, rest = readme.split(BEGIN)
    _, tail = rest.split(END)
    return f"{head}{BEGIN}\n{block}{END}{tail}"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m tailbench.leaderboard.findings", description=__doc__.split("\n\n")[0])
    p.add_argument("--results", type=Path, default=Path("results"))
    p.add_argument("--readme", type=Path, default=Path("README.md"))
    p.add_argument("--check", action="store_true", help="exit 1 when the README's block is not what the records give")
    args = p.parse_args(argv)
    try:
        readme = args.readme.read_text()
        updated = splice(readme, render(entries(iter_runs(args.results))))
    except (UserError, OSError) as error:
        print(f"findings: error: {error}", file=sys.stderr)
        return 2
    if args.check:
        if updated != readme:
            print(f"findings: {args.readme} is not what {args.results} gives: run `make findings`", file=sys.stderr)
            return 1
        return 0
    if updated != readme:
        args.readme.write_text(updated)
    return 0


if __name__ == "__main__":
    sys.exit(main())
