"""Bad input: one line saying what was wrong and what to do, exit code 2, nothing written."""

import pytest


@pytest.mark.parametrize(
    "args, expected",
    [
        (["run", "--dataset", "nope", "--method", "ce"], "unknown dataset 'nope'"),
        (["run", "--dataset", "digits-lt", "--method", "nope"], "unknown method part 'nope'"),
        (["run", "--dataset", "digits-lt", "--method", "ce+"], "malformed"),
        (["run", "--dataset", "digits-lt", "--method", "ce", "--epochs", "0"], "--epochs must be positive"),
        (["run", "--dataset", "digits-lt", "--method", "ce", "--epochs", "two"], "invalid int value"),
        (["run", "--dataset", "digits-lt", "--method", "ce", "--seed", "-1"], "--seed must be a non-negative"),
        (["run", "--dataset", "digits-lt", "--method", "ce", "--lr", "-0.1"], "--lr must be positive"),
        (["run", "--dataset", "digits-lt", "--method", "ce", "--dataset-opt", "n_max=many"], "not a valid int"),
        (["run", "--dataset", "digits-lt", "--method", "ce", "--dataset-opt", "colour=red"], "has no option 'colour'"),
        (["run", "--dataset", "digits-lt", "--method", "ce", "--dataset-opt", "n_max"], "not of the form key=value"),
        (["run", "--dataset", "digits-lt", "--method", "ce", "--hp", "ce.gamma=2"], "ce has no hyper-parameter 'gamma'"),
        (["run", "--dataset", "digits-lt", "--method", "ce", "--recipe", "nope"], "unknown recipe 'nope'"),
        (["run", "--dataset", "digits-lt", "--method", "ce", "--device", "tpu"], "--device 'tpu'"),
        (["run", "--dataset", "digits-lt", "--method", "ce", "--method-file", "missing.py"], "no such Python file"),
        (["describe", "nope"], "unknown dataset 'nope'"),
        (["leaderboard", "--results", "does-not-exist"], "is not a folder of run records"),
        (["frobnicate"], "invalid choice"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(cli, tmp_path, args, expected):
    result = cli(*args, *(["--out", tmp_path / "out"] if args[0] == "run" else []))
    assert result.code == 2
    assert expected in result.error_line()
    assert not (tmp_path / "out").exists()


def test_missing_data_names_the_files_and_how_to_get_them(cli, tmp_path, monkeypatch):
    from tailbench.datasets import fashion_mnist

    monkeypatch.setattr(fashion_mnist, "SYSTEM_DIRS", [])
    result = cli("run", "--dataset", "fmnist-rot-lt", "--method", "ce", "--data-dir", tmp_path / "empty", "--out", tmp_path / "out")
    assert result.code == 2
    line = result.error_line()
    assert "train-images-idx3-ubyte" in line and "apt-get install dataset-fashion-mnist" in line and "--data-dir" in line
    assert not (tmp_path / "out").exists()
