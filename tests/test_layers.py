"""The import layers declared in pyproject.toml ([tool.importlinter]) hold: each package imports
only from the layers below it (docs/ARCHITECTURE.md, "Layers")."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

from importlinter.cli import lint_imports

ROOT = Path(__file__).resolve().parents[1]


def test_the_layer_contract_is_kept(monkeypatch, capsys):
    monkeypatch.chdir(ROOT)
    code = lint_imports(config_filename=str(ROOT / "pyproject.toml"), no_cache=True)
    assert code == 0, capsys.readouterr().out[-4000:]


def test_the_contract_catches_an_import_up_the_layers(tmp_path):
    """The same contract over a copy of the package with one arrow drawn back up fails (in a
    subprocess, so that this session's imported tailbench is not the one analysed)."""
    copy = tmp_path / "tailbench"
    shutil.copytree(ROOT / "tailbench", copy, ignore=shutil.ignore_patterns("__pycache__"))
    store = copy / "results" / "store.py"
    store.write_text(store.read_text() + "\nfrom tailbench.benchmarks import runner  # noqa: E402\n")
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    command = [sys.executable, "-c", "import sys; from importlinter.cli import lint_imports; sys.exit(lint_imports(no_cache=True))"]
    done = subprocess.run(command, cwd=tmp_path, env={**os.environ, "PYTHONPATH": str(tmp_path)}, capture_output=True, text=True, timeout=120)
    assert done.returncode == 1, done.stdout[-2000:] + done.stderr[-2000:]
    assert "tailbench.results is not allowed to import tailbench.benchmarks" in done.stdout
