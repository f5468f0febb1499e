"""What leads the leaderboard: per recipe, the methods ranked across its benchmarks, their
probability of improving on `ce`, and each benchmark's verdicts against `ce`.

Headline columns: balanced accuracy, tail-third accuracy, and tail eKLD and tail consistency of the
benchmark's own nuisance (`HEADLINES`). For each, a method's verdict on a benchmark is `stats.paired_seed_test`
against `ce` (paired by seed, p < 0.05); its mean rank is over the benchmarks it has
(`stats.mean_ranks`, ties averaged); its probability of improvement is rliable's P(method > ce),
the Mann-Whitney U over seeds averaged over the benchmarks both have. The same verdicts, with
their p-values and t intervals, are written to `significance.csv`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from tailbench.leaderboard.aggregate import Entry
from tailbench.leaderboard.findings import BASELINE, display, headline_family, recipe_key, recipe_label, recipe_rank
from tailbench.leaderboard.stats import PairedTest, mean_ranks, paired_seed_test, probability_of_improvement


@dataclass(frozen=True)
class Headline:
    label: str
    metric: str  # a results/metrics.py key, or its stem when it is per invariance family
    higher_is_better: bool
    scale: float
    digits: int
    per_family: bool = False  # of the benchmark's own nuisance: `metric`_<family>

    def key(self, entry: Entry) -> str | None:
        if not self.per_family:
            return self.metric
        family = headline_family(entry)
        return f"{self.metric}_{family}" if family else None


HEADLINES = (
    Headline("balanced", "balanced_accuracy", True, 100.0, 1),
    Headline("tail acc.", "tail_accuracy", True, 100.0, 1),
    Headline("tail eKLD", "tail_ekld", False, 1.0, 3, per_family=True),
    # eKLD moves with the logits' scale alone; consistency does not, so a rescaling method shows here
    Headline("tail consistency", "tail_consistency", True, 100.0, 1, per_family=True),
)
MARKS = {"better": "▲", "worse": "▼", "indistinguishable": "="}
SORT_BY = HEADLINES[0]  # benchmark tables are sorted by it, best first


def seed_values(entry: Entry, key: str | None) -> dict[int, float]:
    if key is None or key not in entry.summaries:
        return {}
    return {int(seed): float(v) for seed, v in entry.summaries[key].dropna().items()}


def verdict(entry: Entry, baseline: Entry | None, headline: Headline) -> PairedTest | None:
    if baseline is None or entry is baseline:
        return None
    return paired_seed_test(seed_values(entry, headline.key(entry)), seed_values(baseline, headline.key(baseline)),
                            higher_is_better=headline.higher_is_better)


def sorted_entries(group: list[Entry]) -> list[Entry]:
    """Best first by SORT_BY's mean, entries without it last, then by name."""
    def key(entry: Entry):
        value = entry.metric(SORT_BY.key(entry) or "").mean
        return (value is None, -(value or 0.0) if SORT_BY.higher_is_better else (value or 0.0), entry.method)
    return sorted(group, key=key)


def significance_rows(grouped: dict[str, list[Entry]]) -> list[list[object]]:
    rows = []
    for benchmark, group in grouped.items():
        baseline = next((e for e in group if e.method == BASELINE), None)
        for entry in group:
            for headline in HEADLINES:
                test = verdict(entry, baseline, headline)
                if test is not None:
                    rows.append([benchmark, entry.method, headline.key(entry), len(test.seeds), test.mean_difference,
                                 test.low, test.high, test.p_value, test.verdict])
    return rows


SIGNIFICANCE_HEADER = ["benchmark", "method", "metric", "seeds", "mean_difference_vs_ce", "t95_low", "t95_high", "p_value", "verdict"]


def recipe_table(groups: list[list[Entry]]) -> list[str]:
    benchmarks = [g[0].benchmark for g in groups]
    methods = sorted({e.method for g in groups for e in g})
    by = {(e.benchmark, e.method): e for g in groups for e in g}
    baselines = {b: by.get((b, BASELINE)) for b in benchmarks}
    ranks = {}
    for headline in HEADLINES:
        scores = np.array([[by[(b, m)].metric(headline.key(by[(b, m)]) or "").mean if (b, m) in by else None
                            for b in benchmarks] for m in methods], dtype=float)
        ranks[headline.label] = dict(zip(methods, mean_ranks(scores, higher_is_better=headline.higher_is_better)))
    header = ["method", "benchmarks"] + [f"mean rank: {h.label}" for h in HEADLINES] + [f"P(> ce): {h.label}" for h in HEADLINES[1:]]
    header += [f"vs ce: {h.label}" for h in HEADLINES]
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(["---"] * len(header)) + "|"]
    order = sorted(methods, key=lambda m: (np.isnan(ranks[SORT_BY.label][m]), ranks[SORT_BY.label][m], m))
    variants = {m: f"v{i + 1}" for i, m in enumerate(m for m in order if "@" in m)}
    for method in order:
        mine = [b for b in benchmarks if (b, method) in by]
        cells = [f"`{display(method, variants)}`", str(len(mine))]
        cells += ["—" if np.isnan(ranks[h.label][method]) else f"{ranks[h.label][method]:.2f}" for h in HEADLINES]
        for headline in HEADLINES[1:]:
            cells.append(improvement_cell(method, mine, by, baselines, headline))
        for headline in HEADLINES:
            marks = [MARKS[t.verdict] for b in mine if (t := verdict(by[(b, method)], baselines[b], headline))]
            cells.append(" ".join(marks) if marks else "—")
        lines.append("| " + " | ".join(cells) + " |")
    lines += ["", "Marks in the order of the benchmarks: " + ", ".join(benchmarks) + "."]
    if variants:
        lines.append("; ".join(f"({mark}) `{method}`" for method, mark in variants.items()) + ".")
    return lines


def improvement_cell(method: str, benchmarks: list[str], by: dict, baselines: dict, headline: Headline) -> str:
    if method == BASELINE:
        return "—"
    x_tasks, y_tasks = [], []
    for b in benchmarks:
        base = baselines[b]
        x = list(seed_values(by[(b, method)], headline.key(by[(b, method)])).values())
        y = list(seed_values(base, headline.key(base)).values()) if base is not None else []
        if x and y:
            x_tasks.append(np.array(x))
            y_tasks.append(np.array(y))
    if not x_tasks:
        return "—"
    return f"{float(probability_of_improvement(x_tasks, y_tasks, higher_is_better=headline.higher_is_better)):.2f}"


def render_overview(grouped: dict[str, list[Entry]]) -> str:
    recipes: dict[str, list[list[Entry]]] = {}
    for benchmark in sorted(grouped, key=recipe_rank):
        recipes.setdefault(recipe_key(benchmark), []).append(grouped[benchmark])
    lines = [
        "## Overview", "",
        "Per recipe, methods ranked across its benchmarks by mean rank (1 = best; ties averaged) on each headline",
        "column: balanced accuracy, tail-third accuracy, tail eKLD of the benchmark's own nuisance (lower is",
        "better) and its tail consistency (which, unlike eKLD, the logits' scale alone does not move). P(> ce): rliable's probability of improvement on `ce` (Mann-Whitney U over seeds, averaged over",
        "benchmarks). vs ce: one mark per benchmark, ▲ better, ▼ worse, = indistinguishable (paired t-test over",
        "seeds, p < 0.05; p-values and intervals in `significance.csv`). Sorted by mean rank on balanced accuracy;",
        "benchmark tables below are sorted by balanced accuracy, best first. The README's findings",
        "(`FINDINGS.md`) set each method against its own reference spec instead.",
    ]
    for key, groups in recipes.items():
        if not any(e.method == BASELINE for g in groups for e in g):
            continue
        lines += ["", f"### {recipe_label(groups[0][0])}", ""] + recipe_table(groups)
    return "\n".join(lines)
