"""LEADERBOARD.md: per benchmark, one row per method, mean ± std over seeds; papers' numbers apart."""

from __future__ import annotations

from tailbench.datasets.imbalance import long_tailedness
from tailbench.leaderboard.aggregate import Entry, Stat, machine_counts, off_machine, usual_machine
from tailbench.leaderboard.intervals import interval_kind
from tailbench.leaderboard.plots import plots_note
from tailbench.leaderboard.reported import Reported
from tailbench.results.metrics import Display, table_columns

def fmt(value: Stat, scale: float = 1.0, digits: int = 2) -> str:
    """mean ± sd (for the method-own numbers, which have no interval)."""
    if value.mean is None:
        return "—"
    text = f"{value.mean * scale:.{digits}f}"
    return text + (f" ± {value.std * scale:.{digits}f}" if value.std is not None else "")


def with_interval(value: Stat, display: Display) -> str:
    """mean [low, high]: the mean over seeds and its 95 % interval; — when the metric is missing."""
    if value.mean is None:
        return "—"
    text = f"{value.mean * display.scale:.{display.digits}f}"
    if value.low is not None and value.high is not None:
        text += f" [{value.low * display.scale:.{display.digits}f}, {value.high * display.scale:.{display.digits}f}]"
    return text


SEES_TEST_IMAGES = ("adapts at test time on the test split's images, never their labels (SADE's self-supervised aggregation): "
                    "it has seen the test inputs, which the other entries have not")


def card_text(outside) -> str:
    """An outside model's card and identity, in one line of plain text."""
    card = outside.card
    return (f"{card.name} ({card.url}); trained on: {card.training_data}; test split used for model selection: "
            f"{'yes' if card.test_used_for_selection else 'no'}; checkpoint sha256 {outside.checkpoint.sha256[:12]}…, "
            f"{outside.parameters:,} parameters, built by {outside.model.kind} {outside.model.name}")


def tailedness_text(entries: list[Entry]) -> str:
    """The benchmark's long-tailedness (HeroLT's measures) from its training class sizes."""
    counts = entries[0].runs[0].per_class["train_count"].to_numpy()
    shape = long_tailedness(counts)
    return (f"Training split: {counts.size} classes, {int(counts.sum()):,} images; imbalance factor {shape.imbalance_factor:g}, "
            f"Gini {shape.gini_labels:.3f} (HeroLT's, over image labels; {shape.gini_class_sizes:.3f} over class sizes), "
            f"Pareto-LT ratio {shape.pareto_lt_ratio:.2f} (α = {shape.pareto_alpha:g}).")


def machines_text(entries: list[Entry], elsewhere: dict[str, list[str]]) -> str:
    """The ᵐ note: the machine kinds a table's records were made on, and the entries off the usual one."""
    made = "; ".join(f"{kind} ({n} records)" for kind, n in machine_counts(entries))
    off = "; ".join(f"{method}: {', '.join(found)}" for method, found in elsewhere.items())
    return (f"ᵐ made (in part) on another machine kind than most of this table ({usual_machine(entries)}): {off}. Records made on: {made}. "
            "The same code and seed give other float sums on another CPU kind (about one seed's spread here, docs/PERFORMANCE.md), "
            "so a difference across kinds is not a paired one.")


def one_line(text: str) -> str:
    return " ".join(str(text).split())


def escape(text: str) -> str:
    """Record text as literal Markdown table text (no HTML, no table breaks)."""
    text = one_line(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    for char in "\\|`*_[]":
        text = text.replace(char, "\\" + char)
    return text


def code(text: str) -> str:
    """A code span (literal inside, so only the table's pipe needs escaping)."""
    text = one_line(text)
    if "`" in text or not text:
        return escape(text)
    return "`" + text.replace("|", "\\|") + "`"


def learned_label(key: str) -> str:
    return key.removeprefix("learned_")


def learned_cell(entry: Entry) -> str:
    parts = [f"{learned_label(key)} {fmt(entry.metric(key), 1.0, 3)}" for key in entry.learned_keys]
    return "; ".join(parts) or "—"


def reported_table(rows: list[Reported]) -> list[str]:
    """Papers' numbers for one benchmark: their own table, every row marked reported."""
    lines = [
        "**Reported in papers** (not reproduced by tailbench; not comparable row by row: the papers "
        "selected checkpoints on the test set):",
        "",
        "| | method | paper's name | top-1 error (%) | accuracy (%) = 100 - error | source |",
        "|---|---|---|---|---|---|",
    ]
    for row in rows:
        mark = "reported" + ("" if row.verified else ", unverified")
        note = f" ({escape(row.note)})" if row.note else ""
        lines.append(
            f"| *{mark}* | {code(row.method)} | {escape(row.paper_method)} | {row.value:.2f} | {row.accuracy:.2f} | "
            f"{escape(row.citation)}{note} |"
        )
    return lines


EKLD_PROTOCOL_TEXT = {
    "clean": "x is the clean test image, as in the reference code",
    "drawn": "x is the test image with its nuisance draw; not comparable with `clean`",
}


def benchmark_section(benchmark: str, entries: list[Entry], plot_names: list[tuple[str, str]], reported: list[Reported] | None = None) -> str:
    lines = [f"## {escape(benchmark)}", ""]
    if entries:
        families = entries[0].families
        learned = any(e.learned_keys for e in entries)
        columns = table_columns(families)
        headers = ["method", "seeds"] + [escape(m.label) for m in columns]
        if learned:
            headers.append("learned invariance")
        first = entries[0].runs[0].record
        recipe = first.recipe
        lines.append(
            f"Recipe `{one_line(recipe.name)}`: {escape(recipe.model)}, {recipe.epochs} epochs, batch {recipe.batch_size}; "
            f"eKLD over {recipe.ekld_images_per_class} test images per class x {recipe.ekld_transforms} transforms, "
            f"protocol `{recipe.ekld_protocol}` ({EKLD_PROTOCOL_TEXT[recipe.ekld_protocol]}). "
            f"Manifest `{one_line(first.dataset.manifest_sha256)[:16]}`."
        )
        lines += ["", escape(tailedness_text(entries)), "",
                  f"Cells: mean over seeds [95 % percentile bootstrap interval: {interval_kind(entries)}]."]
        elsewhere = off_machine(entries)
        lines += ["", "| " + " | ".join(headers) + " |", "|" + "|".join(["---"] * len(headers)) + "|"]
        for entry in entries:
            marks = (" ‡" if entry.external_code else "") + (" †" if entry.outside is not None else "") + (" §" if entry.sees_test_images else "") \
                + (" ᵐ" if entry.method in elsewhere else "")
            cells = [code(entry.method) + marks, str(len(entry.runs)) + ("ⁱ" if entry.has_images else "")]
            cells += [with_interval(entry.metric(m.key), m.display) for m in columns]
            if learned:
                cells.append(escape(learned_cell(entry)))
            lines.append("| " + " | ".join(cells) + " |")
        external = [f"{code(entry.method)}: {escape(', '.join(entry.external_code))}" for entry in entries if entry.external_code]
        if external:
            lines += ["", "‡ runs method parts from outside tailbench (their run records hold the source): " + "; ".join(external) + "."]
        outside = [f"{code(entry.method)}: {escape(card_text(entry.outside))}" for entry in entries if entry.outside is not None]
        if outside:
            lines += ["", "† trained outside tailbench and evaluated by `tailbench evaluate` (no tailbench training to rerun): " + "; ".join(outside) + "."]
        adapted = [code(entry.method) for entry in entries if entry.sees_test_images]
        if adapted:
            lines += ["", f"§ {SEES_TEST_IMAGES}: " + ", ".join(adapted) + "."]
        if elsewhere:
            lines += ["", escape(machines_text(entries, elsewhere))]
        if plot_names:
            lines += ["", escape(plots_note(entries))]
        for name, alt in plot_names:
            lines += ["", f"![{escape(alt)}]({name})"]
    else:
        lines.append("No run records yet.")
    if reported:
        lines += [""] + reported_table(reported)
    return "\n".join(lines)


PREAMBLE = """# tailbench leaderboard

Generated by `tailbench leaderboard` from run records only; do not edit by hand. The same tables,
sortable and with per-class drill-downs, are in `index.html`; `summary.csv` and `per_class.csv`
export every entry, `reported.csv` the papers' numbers.

Accuracies are percentages on the test split: the mean over seeds, then its 95 % percentile
bootstrap interval in brackets (seeds resampled and, for records that keep per-image evidence,
marked ⁱ after the seed count, test images resampled within each class; the sample standard
deviations are in `summary.csv`). Every metric is computed from the records' per-class and
per-image tables when the leaderboard is built (`tailbench/results/metrics.py`); — marks a metric
a record lacks the data for. many / medium / few: classes with > 100, 20..100, < 20 training
images (— when a dataset has no such class). tail third: the smallest third of the classes. geo.
mean: geometric mean of per-class accuracies. acc forward-50 / backward-50: the expected accuracy
on SADE's test-agnostic label distributions (the test set subsampled to a long tail of imbalance
50 that follows the training one, or runs against it; `acc` is SADE's uniform; the other eight
are in `summary.csv`). ECE: expected calibration error of the top-1 confidence (15 equal-width
bins; tail ECE over the tail third's images). eKLD: mean KL(p(.|x) || p(.|t(x))) over classes
(lower is more invariant); tail eKLD over the smallest third; tail consistency: the tail third's
mean share of transformed copies t(x) whose predicted class stays that of x (higher is more
invariant; unlike eKLD, the logits' scale alone does not move it); ρ(eKLD, n): Spearman correlation of
per-class eKLD with training count (negative: small classes are less invariant). learned
invariance: what a method learned about its own augmentation (summary numbers `learned_*`, mean ±
sd).
Numbers from papers are never mixed into these tables: each benchmark lists them apart, marked
*reported* (from `tailbench/leaderboard/reported.yaml`, with citations).
"""


def render(sections: list[str]) -> str:
    body = "\n\n".join(sections) if sections else "No complete run records yet."
    return PREAMBLE + "\n" + body + "\n"
