"""What CONTRIBUTING.md promises: a method file runs via --method-file, and installed packages can
register methods under the `tailbench.methods` entry-point group."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tailbench.methods import registry
from tailbench.submission.validate import validate_run

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "label_smoothing.py"


def test_the_label_smoothing_example_runs_one_epoch_via_method_file(cli, tmp_path):
    result = cli("run", "--method-file", EXAMPLE, "--method", "ls+drs", "--hp", "ls.eps=0.2", "--dataset", "digits-lt",
                 "--epochs", "1", "--out", tmp_path, "--quiet")
    assert result.code == 0, result.err
    directory = tmp_path / "digits-lt@epochs=1" / "ls+drs@ls.eps=0.2" / "seed-0"  # a variant is its own entry
    record = json.loads((directory / "result.json").read_text())
    assert record["method"]["hparams"] == {"ls": {"eps": 0.2}, "drs": {"weights": "inverse", "beta": 0.9999}}
    assert record["method"]["changed"] == {"ls.eps": 0.2}
    assert 0 <= record["summary"]["accuracy"] <= 1
    assert validate_run(directory).ok  # and it can be submitted as it is


def test_the_example_loss_is_label_smoothed_cross_entropy():
    import torch
    import torch.nn.functional as F

    registry.load_method_file(str(EXAMPLE))
    registry.load_method_file(str(EXAMPLE))  # loading the same file twice is harmless
    part = registry.method_parts()["ls"](None, {"eps": 0.1})
    generator = torch.Generator().manual_seed(0)
    logits, y = torch.randn(16, 5, generator=generator), torch.randint(0, 5, (16,), generator=generator)
    assert torch.allclose(part.loss(logits, y, None), F.cross_entropy(logits, y, label_smoothing=0.1))
    weights = torch.rand(5, generator=generator) + 0.5  # with a rule's class weights, eps = 0 is weighted CE
    plain = registry.method_parts()["ls"](None, {"eps": 0.0})
    assert torch.allclose(plain.loss(logits, y, weights), F.cross_entropy(logits, y, weight=weights))


def fake_distribution(root: Path, name: str, entry_points: str, module: str | None = None, source: str = "") -> None:
    """An installed-looking package: a .dist-info with entry_points.txt, and maybe its module."""
    info = root / f"{name}-0.1.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(entry_points)
    if module:
        (root / f"{module}.py").write_text(source)


@pytest.fixture
def fresh_entry_points(monkeypatch, tmp_path):
    monkeypatch.setattr(registry, "_entry_points_loaded", False)
    monkeypatch.setattr(registry, "_PARTS", dict(registry._PARTS))
    monkeypatch.syspath_prepend(str(tmp_path))
    return tmp_path


def test_methods_from_entry_points_join_the_registry(fresh_entry_points, cli):
    source = (
        "from tailbench.methods import MethodPart, register_method\n"
        "import torch.nn.functional as F\n"
        "@register_method('tb_ep_module_loss')\n"
        "class ModuleLoss(MethodPart):\n"
        "    kind = 'loss'\n"
        "    def loss(self, logits, y, weights):\n"
        "        return F.cross_entropy(logits, y, weight=weights)\n"
        "class ClassRule(MethodPart):\n"
        "    kind = 'rule'\n"
    )
    fake_distribution(fresh_entry_points, "tb_ep_demo", "[tailbench.methods]\nmodule = tb_ep_demo\nrule = tb_ep_demo:ClassRule\n",
                      "tb_ep_demo", source)
    parts = registry.method_parts()
    assert "tb_ep_module_loss" in parts and parts["rule"].kind == "rule"
    assert [p.name for p in registry.parse_spec("tb_ep_module_loss+rule")] == ["tb_ep_module_loss", "rule"]


def test_a_broken_entry_point_is_one_line_naming_it(fresh_entry_points, cli):
    fake_distribution(fresh_entry_points, "tb_ep_broken", "[tailbench.methods]\nbroken = tb_ep_missing_module\n")
    result = cli("list", "methods")
    assert result.code == 2
    line = result.error_line()
    assert "entry point 'broken' = 'tb_ep_missing_module'" in line and "ModuleNotFoundError" in line


def test_a_method_file_is_part_of_the_record_and_rerun_refuses_changed_code(cli, tmp_path):
    import hashlib

    method_file = tmp_path / "code" / "label_smoothing.py"
    method_file.parent.mkdir()
    method_file.write_bytes(EXAMPLE.read_bytes())
    results = tmp_path / "results"
    ran = cli("run", "--method-file", method_file, "--method", "ls", "--dataset", "digits-lt", "--epochs", "1", "--out", results, "--quiet")
    assert ran.code == 0, ran.err
    record = json.loads((results / "digits-lt@epochs=1" / "ls" / "seed-0" / "result.json").read_text())
    part = record["method"]["parts"][0]
    assert part["origin"] == "file" and part["code"]["file"] == "label_smoothing.py"
    assert part["code"]["text"] == EXAMPLE.read_text() and part["code"]["sha256"] == hashlib.sha256(EXAMPLE.read_bytes()).hexdigest()

    same = cli("rerun", "digits-lt@epochs=1", "ls", "--results", results, "--method-file", method_file)
    assert same.code == 0 and "agree: all" in same.out, same.err + same.out
    method_file.write_text(EXAMPLE.read_text() + "\n# an edit after the run\n")
    refused = cli("rerun", "digits-lt@epochs=1", "ls", "--results", results, "--method-file", method_file)
    assert refused.code == 2 and refused.out == ""
    line = refused.error_line()
    assert "method part 'ls' ran from label_smoothing.py" in line and "--allow-changed-code" in line
    allowed = cli("rerun", "digits-lt@epochs=1", "ls", "--results", results, "--method-file", method_file, "--allow-changed-code")
    assert allowed.code == 0 and "note: method part 'ls'" in allowed.out
