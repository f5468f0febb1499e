"""Records of one seed made on different CPU kinds differ by float noise, so the leaderboard says
which entries come from another machine kind than most of their table, and the findings say which
paired differences cross kinds; records that name no CPU are never counted as another kind."""

from __future__ import annotations

from tailbench.leaderboard import findings
from tailbench.leaderboard.aggregate import entries, machine_counts, off_machine, usual_machine
from tailbench.leaderboard.markdown import benchmark_section
from tailbench.results.records import iter_runs

from fake_records import fake_record
from record_edits import edit_result

INTEL, AMD = "Intel(R) Xeon(R) Processor", "AMD EPYC"


def made_on(directory, cpu: str | None) -> None:
    def change(record):
        record["provenance"]["device"] = "cpu (1 threads)"
        if cpu is not None:
            record["provenance"]["machine"] = {"cpu": cpu}
    edit_result(directory, change)


def grid(tmp_path, kinds: dict[str, list[str | None]]):
    for method, cpus in kinds.items():
        for seed, cpu in enumerate(cpus):
            made_on(fake_record(tmp_path, "digits-lt", method, seed, shift=0.05 if method != "ce" else 0.0), cpu)
    return entries(list(iter_runs(tmp_path)))["digits-lt"]


def test_an_entry_from_another_cpu_kind_is_marked_with_the_kinds_in_a_note(tmp_path):
    group = grid(tmp_path, {"ce": [INTEL, INTEL, INTEL], "ce+drs": [INTEL, INTEL, None], "ce+mixup": [AMD, AMD, INTEL]})
    assert machine_counts(group)[0] == (f"cpu (1 threads), {INTEL}", 6)
    assert usual_machine(group) == f"cpu (1 threads), {INTEL}"
    assert off_machine(group) == {"ce+mixup": [f"cpu (1 threads), {AMD}"]}  # the unrecorded CPU of ce+drs is not "other"
    section = benchmark_section("digits-lt", group, [])
    assert "`ce+mixup` ᵐ" in section and "`ce+drs` ᵐ" not in section and "`ce` ᵐ" not in section
    assert f"Records made on: cpu (1 threads), {INTEL} (6 records); cpu (1 threads), {AMD} (2 records); " \
           "cpu (1 threads), CPU model not recorded (1 records)" in section


def test_one_known_kind_and_unrecorded_ones_mark_nothing(tmp_path):
    group = grid(tmp_path, {"ce": [None, None, INTEL], "ce+drs": [INTEL, None, None]})
    assert usual_machine(group) is None and off_machine(group) == {}
    assert "ᵐ" not in benchmark_section("digits-lt", group, [])


def test_findings_flag_a_difference_whose_seeds_ran_on_different_kinds(tmp_path):
    group = grid(tmp_path, {"ce": [INTEL, INTEL, INTEL], "ce+drs": [INTEL, INTEL, None], "ce+mixup": [AMD, INTEL, INTEL]})
    rows = {row.method: row for row in findings.rows(group)}
    assert rows["ce+mixup"].across_machines  # seed 0: AMD against Intel
    assert not rows["ce+drs"].across_machines  # seed 2 names no CPU: it cannot say
    text = findings.render({"digits-lt": group})
    assert "ᵐ The method's and its reference's records of a seed come from different CPU kinds (ce+mixup on digits-lt)" in text
