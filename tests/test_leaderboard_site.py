"""The leaderboard as a product: index.html (in headless Chromium), escaping, reported numbers kept
apart, CSV exports, determinism; and `tailbench compare`."""

from __future__ import annotations

import base64
import csv
import io
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from fake_records import fake_record
from tailbench.leaderboard.build import build_leaderboard, render_files
from tailbench.leaderboard.reported import load_reported

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    root = tmp_path_factory.mktemp("site") / "results"
    for seed in (0, 1, 2):
        fake_record(root, "digits-lt", "ce", seed)
        fake_record(root, "digits-lt", "ce+drs", seed, shift=0.05, learned={"learned_rotation_deg": 10.0 + seed})
    fake_record(root, "digits-lt", "<script>", 0, shift=-0.1)
    fake_record(root, "cifar10-lt", "ce", 0, families=())
    return root


@pytest.fixture(scope="module")
def files(results):
    return render_files(results)


def test_every_file_is_written_and_plots_are_pngs(results, tmp_path):
    written = build_leaderboard(results, tmp_path / "board")
    names = sorted(p.name for p in written)
    assert names == sorted([
        "LEADERBOARD.md", "FINDINGS.md", "index.html", "summary.csv", "significance.csv", "per_class.csv", "reported.csv",
        "head_tail_digits-lt.png", "ekld_vs_count_digits-lt.png", "acc_vs_count_digits-lt.png",
        "head_tail_cifar10-lt.png", "acc_vs_count_cifar10-lt.png",
    ])
    for name in names:
        if name.endswith(".png"):
            assert (tmp_path / "board" / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_the_same_records_give_the_same_bytes(results, files, tmp_path):
    first = files
    assert render_files(results) == first
    # and in a fresh process (fonts, caches and import order must not matter)
    out = tmp_path / "other"
    subprocess.run([sys.executable, "-m", "tailbench", "leaderboard", "--results", str(results), "--out", str(out)],
                   check=True, capture_output=True, cwd=tmp_path)
    assert {p.name: p.read_bytes() for p in out.iterdir()} == first


def test_stale_plots_are_removed(tmp_path):
    results, board = tmp_path / "results", tmp_path / "board"
    fake_record(results, "digits-lt", "ce", 0, families=())
    fake_record(results, "cifar10-lt", "ce", 0, families=())
    build_leaderboard(results, board)
    assert (board / "acc_vs_count_cifar10-lt.png").exists() and (board / "head_tail_cifar10-lt.png").exists()
    shutil.rmtree(results / "cifar10-lt")
    build_leaderboard(results, board)
    assert not (board / "acc_vs_count_cifar10-lt.png").exists() and not (board / "head_tail_cifar10-lt.png").exists()
    assert (board / "head_tail_digits-lt.png").exists()


def test_every_benchmark_with_records_links_its_head_vs_tail_chart_next_to_its_curves(files):
    markdown = files["LEADERBOARD.md"].decode()
    page = files["index.html"].decode()
    for benchmark in ("digits-lt", "cifar10-lt"):
        name = f"head_tail_{benchmark}.png"
        assert files[name][:8] == b"\x89PNG\r\n\x1a\n"
        start = markdown.index(f"## {benchmark}\n")
        section = markdown[start:markdown.find("\n## ", start + 1)]
        links = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", section)
        assert links[0] == name and links[-1] == f"acc_vs_count_{benchmark}.png"
        assert "one small panel per method" in section and "reference method ce dashed" in section
        html_section = page[page.index(f"<h2>{benchmark}</h2>"):]
        html_section = html_section[:html_section.index("</section>")]
        plots = html_section[html_section.index("<h3>Plots</h3>"):]
        images = re.findall(r'<img alt="([^"]*)" src="data:image/png;base64,([^"]+)"', plots)
        assert images[0][0] == f"head-third vs tail-third eKLD and accuracy per method on {benchmark}"
        assert base64.b64decode(images[0][1]) == files[name]
        assert "one small panel per method" in plots


def test_record_text_is_escaped(files):
    page = files["index.html"].decode()
    assert page.count("<script>") == 1  # the page's own script only
    assert "<code>&lt;script&gt;</code>" in page
    markdown = files["LEADERBOARD.md"].decode()
    assert "| `<script>` | 1 |" in markdown  # a code span: literal text in Markdown
    assert "<script>" not in markdown.replace("`<script>`", "")


def test_reported_numbers_are_kept_apart_and_marked(files):
    page = files["index.html"].decode()
    cifar = page[page.index('<h2>cifar10-lt</h2>'):]
    cifar = cifar[:cifar.index("</section>")]
    board, reported = cifar.split('<h3>Reported in papers')
    assert "70.36" not in board and "29.64" not in board  # reproduced table: records only
    assert "70.36" in reported and "29.64" in reported and "unverified" in reported
    assert 'class="sortable reported"' in reported
    # benchmarks with reported numbers and no records still get their reported table
    assert '<h2>cifar100-lt</h2>' in page
    markdown = files["LEADERBOARD.md"].decode()
    start = markdown.index("## cifar10-lt\n")
    section = markdown[start:markdown.index("\n## ", start)]
    assert "*reported*" in section and "| `ldam+drw` | LDAM-DRW | 22.97 | 77.03 |" in section
    rows = list(csv.DictReader(io.StringIO(files["reported.csv"].decode())))
    assert {r["benchmark"] for r in rows} == {"cifar10-lt", "cifar100-lt", "cifar10-lt--ratio=10", "cifar100-lt--ratio=10"}
    summary = list(csv.DictReader(io.StringIO(files["summary.csv"].decode())))
    assert all(r["benchmark"] != "cifar100-lt" for r in summary)


def test_reported_benchmarks_are_dataset_ids_of_the_registry():
    from tailbench.datasets import dataset_names, get_dataset

    for row in load_reported():
        name, *options = row.benchmark.split("--")
        if name not in dataset_names():
            pytest.skip(f"dataset {name} is not registered in this checkout")
        opts = dict(option.split("=", 1) for option in options)
        assert get_dataset(name, opts).dataset_id == row.benchmark
        assert row.citation and (row.verified or row.method == "ce+drw")


def test_reported_yaml_is_loaded_safely(tmp_path):
    from tailbench.errors import UserError

    evil = tmp_path / "reported.yaml"
    evil.write_text("version: 1\nsources: !!python/object/apply:os.system ['echo owned']\nrows: []\n")
    with pytest.raises(UserError, match="cannot read the reported numbers"):
        load_reported(evil)


def test_learned_invariance_column(files):
    assert "learned invariance" in files["LEADERBOARD.md"].decode()
    assert "rotation\\_deg 11.000 ± 1.000" in files["LEADERBOARD.md"].decode()
    assert "rotation_deg 11.000 ± 1.000" in files["index.html"].decode()


def test_csv_exports(files):
    summary = list(csv.DictReader(io.StringIO(files["summary.csv"].decode())))
    ce = next(r for r in summary if r["benchmark"] == "digits-lt" and r["method"] == "ce")
    assert ce["n_seeds"] == "3" and ce["seeds"] == "0 1 2" and float(ce["accuracy_std"]) > 0
    assert next(r for r in summary if r["method"] == "ce+drs")["learned_rotation_deg_mean"] == "11.0"
    per_class = list(csv.DictReader(io.StringIO(files["per_class.csv"].decode())))
    assert len([r for r in per_class if r["benchmark"] == "digits-lt" and r["method"] == "ce"]) == 10
    assert per_class[0].keys() >= {"class", "class_name", "train_count", "test_acc", "ekld_rot", "consistency_bg"}


def find_chromium() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable"):
        path = shutil.which(name)
        if path:
            return path
    return None


def open_in_chromium(page: Path, profile: Path) -> tuple[str, str]:
    browser = find_chromium()
    if browser is None:
        pytest.skip("chromium is not installed (`make test` installs Debian's chromium when run as root with apt-get)")
    command = [
        browser, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync",
        f"--user-data-dir={profile}", "--enable-logging=stderr", "--v=0", "--dump-dom", page.as_uri(),
    ]
    done = subprocess.run(command, capture_output=True, text=True, timeout=120, env={**os.environ, "HOME": str(profile)})
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout, done.stderr


def console_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if "CONSOLE" in line]


def write_board(files, board: Path) -> None:
    board.mkdir()
    for name, data in files.items():
        (board / name).write_bytes(data)


def test_index_html_renders_in_headless_chromium_without_console_errors(files, tmp_path):
    board = tmp_path / "board"
    write_board(files, board)
    dom, stderr = open_in_chromium(board / "index.html", tmp_path / "profile")
    assert console_lines(stderr) == []
    assert dom.count('class="sortable board"') == 2  # digits-lt and cifar10-lt have records
    assert dom.count('class="sortable per-class"') == 3 + 1  # one per entry
    assert dom.count('class="sortable reported"') == 4
    tables = dom.count("<table")
    assert dom.count('data-sortable="ready"') == tables  # the script ran over every table
    assert "&lt;script&gt;" in dom and "<script>" in dom  # the method name is text; the page script is a script
    assert len(re.findall(r'<img alt="[^"]*" src="data:image/png;base64,', dom)) == 5
    assert len(re.findall(r'<img alt="head-third vs tail-third[^"]*" src="data:image/png;base64,', dom)) == 2


def test_clicking_a_header_sorts_the_table(files, tmp_path):
    """Append a script that clicks 'acc (%)' of the digits-lt table twice and records the order."""
    board = tmp_path / "board"
    write_board(files, board)
    probe = """<script>
var table = document.querySelectorAll("table.board")[1];
var header = table.tHead.rows[0].cells[2];
function order() { return Array.prototype.map.call(table.tBodies[0].rows, function (r) { return r.cells[0].textContent; }).join(","); }
header.click(); document.body.setAttribute("data-ascending", order());
header.click(); document.body.setAttribute("data-descending", order());
</script></body>"""
    page = board / "probe.html"
    page.write_text((board / "index.html").read_text().replace("</body>", probe))
    dom, stderr = open_in_chromium(page, tmp_path / "profile")
    assert console_lines(stderr) == []
    assert 'data-ascending="&lt;script&gt;,ce,ce+drs"' in dom
    assert 'data-descending="ce+drs,ce,&lt;script&gt;"' in dom


def test_compare_prints_per_class_and_paired_differences(results, cli, tmp_path):
    results = shutil.copytree(results, tmp_path / "results")
    fake_record(results, "digits-lt", "ce+drs", 3, shift=0.05)  # a seed ce does not have: not paired
    result = cli("compare", "digits-lt", "ce", "ce+drs", "--results", results)
    assert result.code == 0, result.err
    assert "per class" in result.out and "paired over shared seeds 0, 1, 2" in result.out

    from tailbench.leaderboard.compare import compare

    comparison = compare(results, "digits-lt", "ce", "ce+drs")
    assert comparison.shared_seeds == [0, 1, 2]
    accuracy = next(p for p in comparison.paired if p.metric == "balanced_accuracy")
    assert accuracy.n == 3 and accuracy.mean_diff == pytest.approx(0.05 * 8 / 10, abs=0.02)
    assert len(comparison.per_class) == 10
    assert set(comparison.per_class.columns) >= {"test_acc_diff", "ekld_rot_a", "ekld_bg_diff"}


def test_compare_names_what_is_missing(results, cli):
    result = cli("compare", "digits-lt", "ce", "ldam", "--results", results)
    assert result.code == 2 and "has no entry for method 'ldam'" in result.error_line()
    result = cli("compare", "nope", "ce", "ce+drs", "--results", results)
    assert result.code == 2 and "no run records for benchmark 'nope'" in result.error_line()


def test_csv_cells_that_a_spreadsheet_would_run_are_neutralised(tmp_path):
    """Formula injection through a method name: text cells starting with =, +, -, @ get a leading
    apostrophe; numbers, negative ones included, stay numbers."""
    root = tmp_path / "results"
    for name in ('=HYPERLINK("http:evil")', "+1", "-cmd", "@SUM(A1)"):
        fake_record(root, "digits-lt", name, 0)
    fake_record(root, "digits-lt", "ce", 0)
    files = render_files(root)
    summary = list(csv.DictReader(io.StringIO(files["summary.csv"].decode())))
    methods = sorted(r["method"] for r in summary)
    assert methods == ["'+1", "'-cmd", "'=HYPERLINK(\"http:evil\")", "'@SUM(A1)", "ce"]
    # computed from the fake per-class table (eKLD falls as classes grow): -1.0, a number
    assert all(float(r["spearman_ekld_count_rot_mean"]) == -1.0 for r in summary)
    assert b"\n-1.0" not in files["summary.csv"] and b",-1.0," in files["summary.csv"]
    per_class = list(csv.DictReader(io.StringIO(files["per_class.csv"].decode())))
    assert {r["method"] for r in per_class} == set(methods)


def test_entries_that_ran_external_code_are_marked(tmp_path):
    import hashlib

    text = "# my loss\n"
    code = {"origin": "file", "code": {"file": "my_loss.py", "sha256": hashlib.sha256(text.encode()).hexdigest(), "text": text}}
    root = tmp_path / "results"
    fake_record(root, "digits-lt", "ce", 0)
    fake_record(root, "digits-lt", "mine", 0, code=code)
    files = render_files(root)
    page = files["index.html"].decode()
    assert page.count('<span class="badge external" title="mine (my_loss.py)">external code</span>') == 1
    markdown = files["LEADERBOARD.md"].decode()
    assert "| `mine` ‡ | 1 |" in markdown and "| `ce` | 1 |" in markdown
    assert "‡ runs method parts from outside tailbench (their run records hold the source): `mine`: mine (my\\_loss.py)." in markdown
