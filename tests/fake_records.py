"""Hand-written run records for leaderboard, compare and rerun tests (no training)."""

from __future__ import annotations

from pathlib import Path

from tailbench.results import SCHEMA_VERSION
from tailbench.results.store import run_dir, write_run

TRAIN = [120, 42, 23, 15, 10, 8, 6, 5, 5, 5]


def fake_record(root: Path, benchmark: str, method: str, seed: int, shift: float = 0.0, families=("rot", "bg"),
                learned: dict[str, float] | None = None, device_type: str = "cpu", code: dict | None = None) -> Path:
    """A complete record (it passes the record models, not the registry checks) whose per-class
    accuracy falls with class size, moved by `shift` and the seed. `code`: every part's origin and
    code (e.g. {"origin": "file", "code": {...}}); default: built in."""
    rows = []
    for k, n in enumerate(TRAIN):
        acc = min(1.0, max(0.0, 0.2 + 0.006 * n + shift + 0.01 * seed))
        row = {"class": k, "class_name": f"c{k}", "train_count": n, "test_count": 40, "val_acc": acc, "test_acc": acc}
        for i, family in enumerate(families):
            row[f"ekld_{family}"] = 0.5 / (1 + n) + 0.1 * i + 0.01 * seed
            row[f"consistency_{family}"] = 0.5 + 0.004 * n
        rows.append(row)
    accs = [r["test_acc"] for r in rows]
    summary = {
        "accuracy": sum(accs) / len(accs), "balanced_accuracy": sum(accs) / len(accs), "val_balanced_accuracy": sum(accs) / len(accs),
        "many_shot_accuracy": accs[0], "medium_shot_accuracy": sum(accs[1:3]) / 2, "few_shot_accuracy": sum(accs[3:]) / 7,
        "head_accuracy": sum(accs[:4]) / 4, "tail_accuracy": sum(accs[-4:]) / 4, "worst_class_accuracy": min(accs),
    }
    for family in families:
        values = [r[f"ekld_{family}"] for r in rows]
        summary.update({
            f"ekld_{family}": sum(values) / len(values), f"head_ekld_{family}": sum(values[:4]) / 4,
            f"tail_ekld_{family}": sum(values[-4:]) / 4, f"consistency_{family}": 0.6, f"spearman_ekld_count_{family}": -0.9,
        })
    summary.update(learned or {})
    epochs = 1
    result = {
        "schema_version": SCHEMA_VERSION,
        "benchmark": benchmark,
        "dataset": {"name": benchmark.split("@")[0], "id": benchmark.split("@")[0], "options": {}, "num_classes": len(TRAIN),
                    "manifest_sha256": "ab" * 32, "manifest_frozen": True, "nuisance": None,
                    "invariance_families": list(families), "sources": [], "train_size": sum(TRAIN), "val_size": 100, "test_size": 400},
        "method": {"spec": method, "parts": [{"name": part, "kind": "loss" if i == 0 else "augmentation", "paper": "-", **(code or {"origin": "builtin"})}
                                             for i, part in enumerate(method.split("@")[0].split("+"))],
                   "hparams": {part: {} for part in method.split("@")[0].split("+")}, "changed": {}},
        "seed": seed,
        "recipe": {"name": "digits", "model": "cifar_resnet8", "epochs": epochs, "batch_size": 64, "lr": 0.05, "momentum": 0.9,
                   "weight_decay": 5e-4, "nesterov": False, "warmup_epochs": 0, "milestones": [], "factors": [], "augment": [],
                   "ekld_images_per_class": 10, "ekld_transforms": 8, "overrides": {}},
        "summary": summary,
        "history": [{"epoch": e, "lr": 0.05, "loss": 1.0, "train_acc": 0.5, "images_per_s": 100.0, "seconds": 1.0, "method": {}} for e in range(epochs)],
        "provenance": {"git": {"commit": None, "dirty": None, "source": None}, "code_sha256": "cd" * 32,
                       "packages": {"python": "3", "torch": "2"}, "machine": {}, "device": "cpu", "device_type": device_type,
                       "runtime": {"memory_format": "contiguous", "eval_batch_size": 256, "captured_steps": False,
                                   "deterministic": True, "train_step": "eager"},
                       "started": "2026-01-01T00:00:00+00:00", "finished": "2026-01-01T00:01:00+00:00", "wall_seconds": 60.0},
    }
    directory = run_dir(root, benchmark, method, seed)
    write_run(directory, result, rows)
    return directory
