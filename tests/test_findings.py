"""The README's findings block: made from the committed records, checked to be current, and its
paired differences right on a worked example."""

from pathlib import Path
from types import SimpleNamespace

import pandas as pd
import pytest

from tailbench.errors import UserError
from tailbench.leaderboard import findings
from tailbench.leaderboard.aggregate import entries
from tailbench.results.records import iter_runs

ROOT = Path(__file__).resolve().parents[1]
README_MAX_LINES = 200


def test_readme_findings_are_what_the_committed_records_give():
    readme = (ROOT / "README.md").read_text()
    expected = findings.splice(readme, findings.render(entries(iter_runs(ROOT / "results"))))
    assert readme == expected, "README.md's findings are out of date: run `make findings` and commit the result"


def test_readme_stays_short():
    assert len((ROOT / "README.md").read_text().splitlines()) <= README_MAX_LINES


class FakeEntry:
    """What `paired` and `reference_spec` read from a leaderboard entry."""

    def __init__(self, method, kinds, values):
        self.method = method
        self.summaries = pd.DataFrame({"tail_accuracy": values}, index=range(len(values)), dtype=float)
        parts = [SimpleNamespace(name=name, kind=kind) for name, kind in kinds]
        self.runs = [SimpleNamespace(record=SimpleNamespace(method=SimpleNamespace(parts=parts)))]


def test_paired_difference_worked_example():
    # differences 1, 2, 3: mean 2, sd 1, t(0.975, 2) = 4.3027, half-width 4.3027 / sqrt(3) = 2.4841;
    # paired t = 2 / (1 / sqrt(3)) = 3.4641 on 2 degrees of freedom: two-sided p = 0.0742
    reference = FakeEntry("ce", [("ce", "loss")], [0.10, 0.20, 0.30])
    method = FakeEntry("ce+drs", [("ce", "loss"), ("drs", "rule")], [1.10, 2.20, 3.30])
    d = findings.paired(method, reference, "tail_accuracy")
    assert d.mean == pytest.approx(2.0)
    assert (d.low, d.high) == pytest.approx((2.0 - 2.4841, 2.0 + 2.4841), abs=1e-4)
    assert d.p == pytest.approx(0.0742, abs=1e-4)
    assert not d.clear and d.seeds == 3
    assert findings.format_delta(d, 1.0, 2) == "+2.00 [-0.48, +4.48]"


def test_paired_uses_shared_seeds_only_and_marks_a_clear_move():
    reference = FakeEntry("ce", [("ce", "loss")], [0.0, 0.0, 0.0, 0.0])
    method = FakeEntry("ce+drw", [("ce", "loss"), ("drw", "rule")], [1.0, 1.1, 0.9])  # seeds 0-2 only
    d = findings.paired(method, reference, "tail_accuracy")
    assert d.seeds == 3 and d.clear and d.p < 0.05
    assert findings.format_delta(d, 1.0, 1).startswith("**+1.0 [")
    assert findings.paired(method, reference, "tail_ekld_rot") is None  # a metric neither record has


def test_reference_is_the_spec_without_augmentations_else_ce():
    def ref(method, kinds):
        return findings.reference_spec(FakeEntry(method, kinds, [0.0]))

    assert ref("ce+drs+git", [("ce", "loss"), ("drs", "rule"), ("git", "augmentation")]) == "ce+drs"
    assert ref("ce+oracle", [("ce", "loss"), ("oracle", "augmentation")]) == "ce"
    assert ref("ldam+drw", [("ldam", "loss"), ("drw", "rule")]) == "ce"
    assert ref("ce", [("ce", "loss")]) is None
    assert ref("ce+crt", [("ce", "loss"), ("crt", "stage")]) == "ce"  # the network it retrained
    assert ref("ldam+drw+crt", [("ldam", "loss"), ("drw", "rule"), ("crt", "stage")]) == "ldam+drw"


def stages(spec="ce", recipe_changes=None, frozen_batchnorm=True, classifier=True):
    representation = SimpleNamespace(spec=spec, recipe_changes=recipe_changes or {})
    return SimpleNamespace(representation=representation,
                           classifier=SimpleNamespace(frozen_batchnorm=frozen_batchnorm) if classifier else None)


def test_keeps_features_only_on_the_references_own_network_with_frozen_batchnorm():
    def entry(*stage_records):
        return SimpleNamespace(runs=[SimpleNamespace(record=SimpleNamespace(stages=s)) for s in stage_records])

    assert findings.keeps_features(entry(stages(), stages(classifier=False)), "ce")  # cRT-like; posthoc_la (no stage 2)
    assert not findings.keeps_features(entry(stages(recipe_changes={"weight_decay": 5e-3})), "ce")  # wb: its own stage 1
    assert not findings.keeps_features(entry(stages(frozen_batchnorm=False)), "ce")  # BatchNorm drifted: features changed
    assert not findings.keeps_features(entry(stages(spec="ce+drs")), "ce")
    assert not findings.keeps_features(entry(stages(), None), "ce")  # one seed's record trained end to end


def test_classifier_only_counts_clear_moves_of_the_rows_that_keep_features():
    def d(p):
        return findings.Difference(0.0, 0.0, 0.0, None, None, p, 3)

    def row(method, keeps, accuracy_p, consistency_p):
        return findings.Row("b", method, "ce", "bg", d(0.5), d(consistency_p), d(accuracy_p), d(0.5), keeps_features=keeps)

    rows = [row("ce+crt", True, 0.01, 0.5), row("ce+lws", True, 0.2, 0.01), row("ce+drs", False, 0.01, 0.01)]
    summary = findings.classifier_only(rows, {})
    assert summary == {"methods": ["ce+crt", "ce+lws"], "rows": 2, "tail_accuracy": 1, "tail_consistency": 1, "tail_ekld": 0}


def test_verdicts_count_the_benchmarks_each_tail_column_clearly_moves_on():
    def d(mean, p):
        return findings.Difference(0.0, mean, mean, None, None, p, 3)

    def row(benchmark, ekld, consistency, accuracy):
        return findings.Row(benchmark, "ce+oracle", "ce", "rot", d(*ekld), d(*consistency), d(*accuracy), d(0.0, 0.5))

    rows = [row("a", (-0.1, 0.01), (0.1, 0.2), (0.05, 0.01)), row("b", (-0.2, 0.01), (0.1, 0.3), (-0.05, 0.04)),
            row("c", (0.1, 0.2), (0.2, 0.01), (0.01, 0.5))]
    assert findings.verdicts(rows, {}) == [
        "`ce+oracle` against `ce`: tail eKLD falls on 2 of 3; tail consistency rises on 1 of 3; "
        "tail-third accuracy falls on 1 of 3 and rises on 1 of 3."]


def test_splice_needs_both_markers_once():
    block = "new\n"
    assert findings.splice(f"a\n{findings.BEGIN}\nold\n{findings.END}\nb\n", block) == f"a\n{findings.BEGIN}\nnew\n{findings.END}\nb\n"
    with pytest.raises(UserError, match="markers"):
        findings.splice("no markers here\n", block)


def test_check_mode_reports_a_stale_readme(tmp_path, capsys):
    readme = tmp_path / "README.md"
    readme.write_text(f"# x\n{findings.BEGIN}\nstale\n{findings.END}\n")
    assert findings.main(["--results", str(ROOT / "results"), "--readme", str(readme), "--check"]) == 1
    assert "make findings" in capsys.readouterr().err
    assert findings.main(["--results", str(ROOT / "results"), "--readme", str(readme)]) == 0
    assert findings.main(["--results", str(ROOT / "results"), "--readme", str(readme), "--check"]) == 0
