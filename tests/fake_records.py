"""Hand-written run records for leaderboard, compare and rerun tests (no training)."""

from __future__ import annotations

from pathlib import Path

from tailbench.results.store import run_dir, write_run

TRAIN = [120, 42, 23, 15, 10, 8, 6, 5, 5, 5]


def fake_record(root: Path, benchmark: str, method: str, seed: int, shift: float = 0.0, families=("rot", "bg"),
                learned: dict[str, float] | None = None, device_type: str = "cpu") -> Path:
    """A record whose per-class accuracy falls with class size, moved by `shift` and the seed."""
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
    result = {
        "schema_version": 1,
        "benchmark": benchmark,
        "dataset": {"name": benchmark.split("@")[0], "id": benchmark.split("@")[0], "options": {}, "num_classes": len(TRAIN),
                    "manifest_sha256": "ab" * 32, "manifest_frozen": True, "nuisance": None,
                    "invariance_families": list(families), "sources": [], "train_size": sum(TRAIN), "val_size": 100, "test_size": 400},
        "method": {"spec": method, "parts": [{"name": method, "kind": "loss", "paper": "-"}], "hparams": {method: {}}},
        "seed": seed,
        "recipe": {"name": "digits", "model": "cifar_resnet8", "epochs": 1, "batch_size": 64, "ekld_images_per_class": 10,
                   "ekld_transforms": 8, "overrides": {}},
        "summary": summary,
        "history": [],
        "provenance": {"device_type": device_type},
    }
    directory = run_dir(root, benchmark, method, seed)
    write_run(directory, result, rows)
    return directory
