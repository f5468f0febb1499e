"""The leaderboard's plots: head-vs-tail bars carry the seed spread, every panel and legend fits the
figure without covering an axes, long method specs wrap without losing a character."""

from __future__ import annotations

import math
import statistics

import matplotlib.pyplot as plt
import pytest
from matplotlib.container import BarContainer
from matplotlib.text import Text

from fake_records import TRAIN, fake_record
from tailbench.leaderboard.aggregate import entries
from tailbench.leaderboard.head_tail import head_tail_figure, panels
from tailbench.leaderboard.plots import accuracy_vs_count_figure, ekld_vs_count_figure, per_class_curve, wrap_name
from tailbench.results.records import iter_runs

LONG = "ce+drs+git@git.delayed=false@git.dim=32@git.gen_batch=8@git.iters=3000"
SEEDS = (0, 2, 7)  # fake_record adds 0.01 * seed: sample sd of (0, 0.02, 0.07) is 0.01 * sqrt(13)


@pytest.fixture(scope="module")
def board(tmp_path_factory):
    root = tmp_path_factory.mktemp("plots") / "results"
    for seed in SEEDS:
        fake_record(root, "digits-lt", "ce", seed)
        fake_record(root, "digits-lt", LONG, seed, shift=0.1)
    fake_record(root, "digits-lt", "ldam+drw", 0, shift=-0.1)  # one seed: no spread to draw
    return entries(iter_runs(root))["digits-lt"]


def tail(values: list[float]) -> float:
    return sum(values[-4:]) / 4  # fake_record's tail third: its four smallest classes


def expected_tail_ekld_rot(seed: int) -> float:
    return tail([0.5 / (1 + n) + 0.01 * seed for n in TRAIN])


def expected_tail_accuracy(seed: int, shift: float) -> float:
    return tail([min(1.0, max(0.0, 0.2 + 0.006 * n + shift + 0.01 * seed)) for n in TRAIN])


def test_head_tail_bars_are_the_mean_and_sample_sd_over_seeds(board):
    chart = panels(board)
    assert [p.title for p in chart] == ["eKLD under rot (lower = more invariant)", "eKLD under bg (lower = more invariant)", "test accuracy (%)"]
    rot = {(b.method, b.part): b for b in chart[0].bars}
    values = [expected_tail_ekld_rot(seed) for seed in SEEDS]
    assert rot["ce", "tail"].mean == pytest.approx(statistics.mean(values))
    assert rot["ce", "tail"].std == pytest.approx(statistics.stdev(values))
    assert rot["ce", "tail"].std == pytest.approx(0.01 * math.sqrt(13))  # ddof = 1, not the population sd
    assert rot["ldam+drw", "tail"].std is None and rot["ldam+drw", "tail"].mean is not None
    accuracy = {(b.method, b.part): b for b in chart[2].bars}
    values = [expected_tail_accuracy(seed, 0.1) for seed in SEEDS]
    assert accuracy[LONG, "tail"].std == pytest.approx(statistics.stdev(values))


def test_the_drawn_error_bars_span_mean_plus_minus_sd(board):
    fig = head_tail_figure("digits-lt", board)
    chart = panels(board)
    for ax, panel in zip(fig.axes, chart):
        containers = [c for c in ax.containers if isinstance(c, BarContainer)]
        assert len(containers) == 2  # head bars, tail bars
        for container, part in zip(containers, ("head", "tail")):
            bars = [b for b in panel.bars if b.part == part]
            assert [rect.get_width() for rect in container.patches] == pytest.approx([b.mean * panel.scale for b in bars])
            # error bar segments by the y of their bar; a bar without a spread has none
            spans = {round(float(seg[0][1]), 6): (seg[0][0], seg[1][0]) for seg in container.errorbar.lines[2][0].get_segments() if len(seg)}
            for bar, rect in zip(bars, container.patches):
                span = spans.get(round(rect.get_y() + rect.get_height() / 2, 6))
                if bar.std is None:
                    assert span is None  # one seed: no error bar at all
                else:
                    low, high = span
                    assert (high - low) / 2 == pytest.approx(bar.std * panel.scale)
                    assert (high + low) / 2 == pytest.approx(bar.mean * panel.scale)
            assert len(spans) == sum(bar.std is not None for bar in bars) == 2
    plt.close(fig)


def test_per_class_curves_are_the_seed_mean_with_the_seed_range(board):
    curve = per_class_curve(board[0], "ekld_rot")  # ce over seeds 0, 2, 7
    assert list(curve["train_count"]) == sorted(TRAIN)
    base = [0.5 / (1 + n) for n in sorted(TRAIN)]
    assert list(curve["mean"]) == pytest.approx([b + 0.03 for b in base])
    assert list(curve["low"]) == pytest.approx(base) and list(curve["high"]) == pytest.approx([b + 0.07 for b in base])
    accuracy = per_class_curve(board[0], "test_acc", 100.0)
    assert accuracy["high"].iloc[0] - accuracy["low"].iloc[0] == pytest.approx(7.0)


def overlaps(a, b) -> bool:
    return a.x0 < b.x1 and b.x0 < a.x1 and a.y0 < b.y1 and b.y0 < a.y1


@pytest.mark.parametrize("draw", [head_tail_figure, ekld_vs_count_figure, accuracy_vs_count_figure])
def test_legends_sit_outside_every_axes_and_labels_inside_the_figure(board, draw):
    fig = draw("digits-lt", board)
    renderer = fig.canvas.get_renderer()
    fig.draw(renderer)
    figure_box = fig.bbox
    axes = [ax for ax in _all_axes(fig) if ax.get_visible()]
    assert fig.legends, "a figure legend, not one per axes"
    assert not any(ax.get_legend() for ax in axes)
    for legend in fig.legends:
        box = legend.get_window_extent(renderer)
        assert box.x0 >= 0 and box.y0 >= 0 and box.x1 <= figure_box.x1 and box.y1 <= figure_box.y1
        assert not any(overlaps(box, ax.get_tightbbox(renderer)) for ax in axes)  # axes with their tick labels
        own = set(legend.findobj(Text))
        others = [t for t in fig.findobj(Text) if t not in own and t.get_visible() and t.get_text()]
        assert not [t.get_text() for t in others if overlaps(box, t.get_window_extent(renderer))]
    for ax in axes:
        for text in [ax.title, *ax.get_yticklabels()]:
            if text.get_text():
                box = text.get_window_extent(renderer)
                assert box.x0 >= 0 and box.x1 <= figure_box.x1 + 0.5, f"{text.get_text()!r} is clipped"
    plt.close(fig)


def _all_axes(fig):
    found = list(fig.axes)
    for subfigure in fig.subfigs:
        found += _all_axes(subfigure)
    return found


def test_one_panel_per_method_with_the_method_in_its_title(board):
    fig = ekld_vs_count_figure("digits-lt", board)
    for subfigure, family in zip(fig.subfigs, ("rot", "bg")):
        visible = [ax for ax in subfigure.axes if ax.get_visible()]
        assert [ax.get_title().split(" (n=")[0].replace("\n", "") for ax in visible] == [e.method for e in board]
        assert family in subfigure.get_suptitle()
    plt.close(fig)


def test_long_method_specs_wrap_at_their_separators_without_losing_text():
    wrapped = wrap_name(LONG, 34)
    assert wrapped.replace("\n", "") == LONG
    assert all(len(line) <= 34 for line in wrapped.splitlines())
    assert all(line[0] in "@+" for line in wrapped.splitlines()[1:])
    assert wrap_name("ce", 34) == "ce"
    assert wrap_name("a" * 50, 34) == "a" * 50  # one piece longer than a line stays whole
    assert wrap_name("price$", 34) == r"price\$"  # literal text, not mathtext
