"""Bad input: one line saying what was wrong and what to do, exit code 2, nothing written."""

import pytest


@pytest.mark.parametrize(
    "args, expected",
    [
        (["run", "--dataset", "nope", "--method", "ce"], "unknown dataset 'nope'"),
        (["run", "--dataset", "digits-lt", "--method", "nope"], "unknown method part 'nope'"),
        (["run", "--dataset", "digits-lt", "--method", "ce+"], "malformed"),
        (["run", "--dataset", "digits-lt", "--method", "ce", "--epochs", "0"], "--epochs: 0 is not an integer from 1 to 100000"),
        (["run", "--dataset", "digits-lt", "--method", "ce", "--epochs", "two"], "--epochs: 'two' is not an integer"),
        (["run", "--dataset", "digits-lt", "--method", "ce", "--seed", "-1"], "--seed: -1 is not an integer from 0 to 4294967295"),
        (["run", "--dataset", "digits-lt", "--method", "ce", "--seed", "9999999999999999999999999"], "--seed: 9999999999999999999999999 is not an integer from 0 to 4294967295"),
        (["run", "--dataset", "digits-lt", "--method", "ce", "--seed", "9" * 300], "--seed: 999999999999999999999999... (300 digits) is not an integer from 0"),
        (["run", "--dataset", "digits-lt", "--method", "ce", "--seed", "4294967296"], "--seed: 4294967296 is not an integer from 0"),
        (["sweep", "--datasets", "digits-lt", "--methods", "ce", "--seeds", "0,99999999999"], "--seeds: 99999999999 is not an integer from 0"),
        (["run", "--dataset", "digits-lt", "--method", "ce", "--batch-size", "99999999999"], "--batch-size: 99999999999 is not an integer from 1"),
        (["run", "--dataset", "digits-lt", "--method", "ce", "--ekld-transforms", "0"], "--ekld-transforms: 0 is not an integer from 1"),
        (["run", "--dataset", "digits-lt", "--method", "ce", "--lr", "-0.1"], "--lr: -0.1 is not a finite number above 0"),
        (["run", "--dataset", "digits-lt", "--method", "ce", "--lr", "inf"], "--lr: inf is not a finite number above 0"),
        (["run", "--dataset", "digits-lt", "--method", "ce", "--lr", "nan"], "--lr: nan is not a finite number above 0"),
        (["run", "--dataset", "digits-lt", "--method", "ce", "--dataset-opt", "n_max=many"], "not a valid int"),
        (["run", "--dataset", "digits-lt", "--method", "ce", "--dataset-opt", "colour=red"], "has no option 'colour'"),
        (["run", "--dataset", "digits-lt", "--method", "ce", "--dataset-opt", "n_max"], "not of the form key=value"),
        (["run", "--dataset", "digits-lt", "--method", "ce", "--hp", "ce.gamma=2"], "ce has no hyper-parameter 'gamma'"),
        (["run", "--dataset", "digits-lt", "--method", "ce", "--recipe", "nope"], "unknown recipe 'nope'"),
        (["run", "--dataset", "digits-lt", "--method", "ce", "--device", "tpu"], "--device 'tpu'"),
        (["run", "--dataset", "digits-lt", "--method", "ce", "--method-file", "missing.py"], "no such Python file"),
        (["describe", "nope"], "unknown dataset 'nope'"),
        (["leaderboard", "--results", "does-not-exist"], "--results does-not-exist does not exist"),
        (["frobnicate"], "invalid choice"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(cli, tmp_path, args, expected):
    result = cli(*args, *(["--out", tmp_path / "out"] if args[0] in ("run", "sweep") else []))
    assert result.code == 2
    assert expected in result.error_line()
    assert not (tmp_path / "out").exists()
    # One style of prefix, whether argparse or the command found the mistake: the command as typed.
    assert result.error_line().startswith("tailbench: error:" if args[0] == "frobnicate" else f"tailbench {args[0]}: error: ")


@pytest.mark.parametrize("args", [
    ["data", "fetch", "nope"], ["generator", "train", "--dataset", "nope"], ["submit", "does-not-exist"],
    ["compare", "digits-lt", "ce", "ce+drs", "--results", "does-not-exist"], ["export", "nope", "--format", "npz", "--out", "x"],
])
def test_every_command_prefixes_its_errors_with_itself(cli, args):
    result = cli(*args)
    assert result.code == 2
    command = " ".join(args[:2]) if args[0] in ("data", "generator") else args[0]
    assert result.error_line().startswith(f"tailbench {command}: error: "), result.err


def test_missing_data_names_the_files_and_how_to_get_them(cli, tmp_path, monkeypatch):
    from tailbench.datasets import fashion_mnist

    monkeypatch.setattr(fashion_mnist, "SYSTEM_DIRS", [])
    result = cli("run", "--dataset", "fmnist-rot-lt", "--method", "ce", "--data-dir", tmp_path / "empty", "--out", tmp_path / "out")
    assert result.code == 2
    line = result.error_line()
    assert "train-images-idx3-ubyte" in line and "apt-get install dataset-fashion-mnist" in line and "--data-dir" in line
    assert not (tmp_path / "out").exists()
