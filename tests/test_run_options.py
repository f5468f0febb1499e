"""Run and launch options are declared once (a field of RunConfig or LaunchSettings, with its
flag), and a run's config is resolved once per process: the CLI's check is what the sweep plans
with and the runner runs."""

from __future__ import annotations

import pickle
from dataclasses import fields

from tailbench import cli_options
from tailbench.benchmarks import config as config_module
from tailbench.benchmarks.config import ResolvedRun, RunConfig, resolve
from tailbench.cli import build_parser
from tailbench.launchers.settings import LaunchSettings


def subparser(command: str):
    parser = build_parser()
    return next(a for a in parser._actions if a.dest == "command").choices[command]


def option_dests(command: str) -> set[str]:
    return {a.dest for a in subparser(command)._actions if a.option_strings}


def flagged(cls) -> dict[str, cli_options.Flag]:
    return {f.name: cli_options.flag_of(f) for f in fields(cls) if cli_options.flag_of(f) is not None}


def test_every_flagged_field_is_an_option_of_run_and_sweep_and_nothing_else_is_added():
    run_fields, launch_fields = flagged(RunConfig), flagged(LaunchSettings)
    assert {"epochs", "ekld_protocol", "data_dir", "hparams", "dataset_options", "checkpoint_every"} <= set(run_fields)
    run_options = option_dests("run") - {"help", "method_file", "dataset", "method", "seed"}
    assert run_options == set(run_fields)
    sweep_options = option_dests("sweep") - {"help", "method_file", "datasets", "methods", "seeds"}
    assert sweep_options == set(run_fields) | set(launch_fields)
    spelled = {a.dest: a.option_strings[0] for a in subparser("sweep")._actions if a.option_strings}
    assert all(spelled[name] == flag.name for name, flag in {**run_fields, **launch_fields}.items())


def test_the_command_line_becomes_the_config_by_field_name():
    args = build_parser().parse_args([
        "sweep", "--datasets", "digits-lt", "--methods", "ce", "--hp", "ce.x=1", "--dataset-opt", "n_max=50",
        "--epochs", "3", "--ekld-protocol", "drawn", "--checkpoint-every", "0", "--jobs", "2", "--quiet",
    ])
    config = cli_options.from_args(RunConfig, args, dataset="digits-lt", method="ce", seed=1)
    assert config == RunConfig("digits-lt", "ce", 1, dataset_options={"n_max": "50"}, hparams={"ce.x": "1"}, epochs=3,
                               ekld_protocol="drawn", checkpoint_every=0, quiet=True)
    settings = cli_options.from_args(LaunchSettings, args)
    assert settings == LaunchSettings(jobs=2, quiet=True)


def test_a_launch_option_of_another_launcher_is_refused_with_its_flag(cli):
    result = cli("sweep", "--datasets", "digits-lt", "--methods", "ce", "--slurm-time", "5")
    assert result.code == 2
    assert result.error_line() == "tailbench sweep: error: --slurm-time applies to --launcher slurm, not local"


def test_a_resolved_run_pickles_as_its_config_and_resolves_again_on_first_use(monkeypatch):
    resolved = resolve(RunConfig("digits-lt", "ce+drs", epochs=2))
    assert (resolved.benchmark, resolved.entry) == ("digits-lt@epochs=2", "ce+drs")
    copy = pickle.loads(pickle.dumps(resolved))  # what a worker process receives
    assert copy._resolution is None and copy.config == resolved.config
    assert (copy.benchmark, copy.entry, copy.directory) == (resolved.benchmark, resolved.entry, resolved.directory)
    assert resolved.with_config(quiet=True)._resolution is resolved._resolution  # where and how loudly: the same run
    assert resolved.with_config(seed=1)._resolution is None and resolved.with_config(seed=1).directory.name == "seed-1"


def test_a_sweep_resolves_each_config_once(monkeypatch, cli, tmp_path):
    calls: list[str] = []
    real = config_module._resolve

    def counting(config: RunConfig):
        calls.append(f"{config.dataset}/{config.method}/{config.seed}")
        return real(config)

    trained: list[ResolvedRun] = []
    monkeypatch.setattr(config_module, "_resolve", counting)
    monkeypatch.setattr("tailbench.benchmarks.runner.train_and_record", lambda config, builder, recipe, benchmark, entry, directory: trained.append(directory))
    result = cli("sweep", "--datasets", "digits-lt", "--methods", "ce,ce+drs", "--seeds", "0,1", "--out", tmp_path, "--quiet")
    assert result.code == 0, result.err
    assert len(trained) == 4
    assert sorted(calls) == sorted(f"digits-lt/{m}/{s}" for m in ("ce", "ce+drs") for s in (0, 1))  # once each
