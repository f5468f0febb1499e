"""A model trained outside tailbench, end to end: a plain PyTorch loop on an exported benchmark,
`tailbench evaluate`, `submit`, the leaderboard's mark and card, `rerun` re-evaluating the
checkpoint; and every bad checkpoint, model file and card answered in one line with nothing written."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

MODEL_FILE = '''
import torch.nn as nn


def build_model(num_classes, image_shape, width=16):
    return nn.Sequential(
        nn.Conv2d(image_shape[0], width, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(4), nn.Flatten(),
        nn.Linear(width * 16, num_classes),
    )
'''
CARD = ["--card", "name=tiny-cnn", "--card", "url=https://example.org/tiny", "--card", "training_data=tailbench export digits-lt, train split",
        "--card", "test_used_for_selection=no"]


def load_model_file(path):
    namespace: dict = {}
    exec(compile(path.read_text(), str(path), "exec"), namespace)
    return namespace["build_model"]


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """Export digits-lt, train on its npz with a plain loop, save the weights."""
    from tailbench.cli import main

    root = tmp_path_factory.mktemp("outside")
    assert main(["export", "digits-lt", "--format", "npz", "--out", str(root / "export")]) == 0
    with np.load(root / "export" / "train.npz") as arrays:
        x, y = torch.from_numpy(arrays["x"]).float() / 255.0, torch.from_numpy(arrays["y"])
    (root / "model.py").write_text(MODEL_FILE)
    torch.manual_seed(0)
    net = load_model_file(root / "model.py")(10, tuple(x.shape[1:]), width=8)
    optimizer = torch.optim.Adam(net.parameters(), lr=0.01)
    for _ in range(30):
        for start in range(0, len(x), 64):
            loss = torch.nn.functional.cross_entropy(net(x[start:start + 64]), y[start:start + 64])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    torch.save(net.state_dict(), root / "ckpt.pt")
    return root


def evaluate_args(root, *extra):
    return ["evaluate", "--dataset", "digits-lt", "--model-file", root / "model.py", "--checkpoint", root / "ckpt.pt",
            "--model-opt", "width=8", "--device", "cpu", *extra]


def test_an_outside_model_reaches_the_leaderboard_and_reruns(trained, cli, tmp_path):
    outcome = cli(*evaluate_args(trained, *CARD, "--out", tmp_path / "runs"))
    assert outcome.code == 0, outcome.err
    record_dir = tmp_path / "runs" / "digits-lt" / "outside:tiny-cnn" / "seed-0"
    result = json.loads((record_dir / "result.json").read_text())
    outside = result["outside"]
    assert outside["card"]["test_used_for_selection"] is False and outside["model"]["text"] == MODEL_FILE
    assert outside["parameters"] == sum(p.numel() for p in load_model_file(trained / "model.py")(10, (1, 16, 16), width=8).parameters())
    assert result["history"] == [] and result["method"]["parts"] == []
    assert result["summary"]["balanced_accuracy"] > 0.5  # it learned: chance is 0.1

    assert cli("submit", tmp_path / "runs", "--results", tmp_path / "results").code == 0
    assert cli("leaderboard", "--results", tmp_path / "results", "--out", tmp_path / "board").code == 0
    board = (tmp_path / "board" / "LEADERBOARD.md").read_text()
    assert "`outside:tiny-cnn` †" in board and "https://example.org/tiny" in board and "test split used for model selection: no" in board
    assert "trained outside tailbench" in (tmp_path / "board" / "index.html").read_text()

    again = cli("rerun", "digits-lt", "outside:tiny-cnn", "--results", tmp_path / "results", "--checkpoint", trained / "ckpt.pt")
    assert again.code == 0 and "per_class.csv: identical" in again.out and "per_image.csv.gz: identical" in again.out
    without = cli("rerun", "digits-lt", "outside:tiny-cnn", "--results", tmp_path / "results")
    assert without.code == 2 and "its training cannot be rerun; pass --checkpoint FILE" in without.error_line()


def bad_case(trained, tmp_path, name):
    """(extra files made, the evaluate arguments, the expected message)."""
    if name == "pickled code":
        torch.save(torch.nn.Linear(2, 2), tmp_path / "pickled.pt")
        args = evaluate_args(trained, *CARD)
        args[args.index(trained / "ckpt.pt")] = tmp_path / "pickled.pt"
        return args, "holds pickled objects or code"
    if name == "not a state dict":
        torch.save([torch.zeros(2)], tmp_path / "list.pt")
        args = evaluate_args(trained, *CARD)
        args[args.index(trained / "ckpt.pt")] = tmp_path / "list.pt"
        return args, "is not a state dict"
    if name == "wrong shapes":
        return [a for a in evaluate_args(trained, *CARD) if a != "width=8" and a != "--model-opt"], "has shape (8, 1, 3, 3); the model's is (16, 1, 3, 3)"
    if name == "model file fails to import":
        (tmp_path / "broken.py").write_text("import not_a_module_anywhere\n")
        args = evaluate_args(trained, *CARD)
        args[args.index(trained / "model.py")] = tmp_path / "broken.py"
        return args, "fails to import: ModuleNotFoundError"
    if name == "wrong output":
        (tmp_path / "seven.py").write_text(MODEL_FILE.replace("num_classes),", "7),"))
        state = load_model_file(tmp_path / "seven.py")(10, (1, 16, 16), width=8).state_dict()
        torch.save(state, tmp_path / "seven.pt")
        args = evaluate_args(trained, *CARD)
        args[args.index(trained / "model.py")], args[args.index(trained / "ckpt.pt")] = tmp_path / "seven.py", tmp_path / "seven.pt"
        return args, "the model returns (2, 7) for 2 images; the benchmark needs [2, 10]"
    if name == "card field missing":
        return evaluate_args(trained, *CARD[:6]), "the model card lacks test_used_for_selection"
    raise AssertionError(name)


@pytest.mark.parametrize("name", ["pickled code", "not a state dict", "wrong shapes", "model file fails to import", "wrong output", "card field missing"])
def test_bad_input_is_one_line_and_writes_nothing(trained, cli, tmp_path, name):
    args, message = bad_case(trained, tmp_path, name)
    outcome = cli(*args, "--out", tmp_path / "runs")
    assert outcome.code == 2 and message in outcome.error_line()
    assert not (tmp_path / "runs").exists()
