"""The per-image evidence of a run record: per_image.csv.gz, one row per test image, in test order.

Columns: `class` (true class), `predicted` (argmax class), `top1_prob` and `true_prob` (the
probabilities of the predicted and of the true class, 6 decimals), then per invariance family f
`ekld_{f}` (the image's mean KL over its eKLD transforms) and `consistency_{f}` (its share of
transforms that keep the argmax), empty for the images eKLD did not sample. Metrics that need
more than per-class means (calibration, test-agnostic accuracy, bootstrap intervals over test
images) read this file; the record's `per_image` field lists its name, size and sha256.

The bytes are deterministic (gzip with no timestamp, fixed float formatting), so a rerun under the
same code reproduces them exactly. Reading and checking need numpy and pandas only.
"""

from __future__ import annotations

import gzip
import hashlib
import io

import numpy as np

from tailbench.results.store import PER_IMAGE
PROB_DECIMALS = 6
EKLD_TOLERANCE = 1e-9  # relative: per-class means recomputed from the file in another order of sums


def columns(families: list[str]) -> list[str]:
    return ["class", "predicted", "top1_prob", "true_prob"] + [f"{kind}_{f}" for f in families for kind in ("ekld", "consistency")]


def encode(
    labels: np.ndarray, predicted: np.ndarray, top1_prob: np.ndarray, true_prob: np.ndarray,
    invariance: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]],
) -> bytes:
    """invariance: family -> (sampled test positions, per-image eKLD, per-image consistency)."""
    n = labels.shape[0]
    families = list(invariance)
    cells: dict[str, list[str]] = {
        "class": [str(int(v)) for v in labels],
        "predicted": [str(int(v)) for v in predicted],
        "top1_prob": [f"{float(v):.{PROB_DECIMALS}f}" for v in top1_prob],
        "true_prob": [f"{float(v):.{PROB_DECIMALS}f}" for v in true_prob],
    }
    for family, (positions, ekld, consistency) in invariance.items():
        ekld_cells, consistency_cells = [""] * n, [""] * n
        for position, kl, same in zip(positions.tolist(), ekld.tolist(), consistency.tolist()):
            ekld_cells[position], consistency_cells[position] = repr(float(kl)), repr(float(same))
        cells[f"ekld_{family}"], cells[f"consistency_{family}"] = ekld_cells, consistency_cells
    header = columns(families)
    lines = [",".join(header)] + [",".join(row) for row in zip(*(cells[c] for c in header))]
    return gzip.compress(("\n".join(lines) + "\n").encode(), compresslevel=9, mtime=0)


def describe(data: bytes, rows: int) -> dict:
    """The record's `per_image` field for these bytes."""
    return {"file": PER_IMAGE, "bytes": len(data), "sha256": hashlib.sha256(data).hexdigest(), "rows": rows}


def decode(data: bytes):
    """The table as a pandas DataFrame; ValueError (with a reason) when it is not one."""
    import pandas as pd

    try:
        text = gzip.decompress(data)
    except (OSError, EOFError, gzip.BadGzipFile) as error:
        raise ValueError(f"is not gzip data ({error})") from None
    try:
        return pd.read_csv(io.BytesIO(text), dtype={"class": "int64", "predicted": "int64"})
    except (ValueError, pd.errors.ParserError, UnicodeDecodeError) as error:
        raise ValueError(f"is not a readable CSV table ({' '.join(str(error).split())[:160]})") from None


def check(data: bytes, listed: dict, families: list[str], per_class) -> list[tuple[str, str]]:
    """Problems of per_image.csv.gz against its listing in result.json and the record's per_class
    table (a pandas DataFrame): checksum, columns, one row per test image, per-class test counts,
    accuracy and eKLD recomputed from the images."""
    where = PER_IMAGE
    if len(data) != listed["bytes"]:
        return [(where, f"is {len(data):,} bytes; result.json per_image.bytes says {listed['bytes']:,}")]
    if hashlib.sha256(data).hexdigest() != listed["sha256"]:
        return [(where, "does not match the sha256 that result.json per_image.sha256 lists (changed or corrupt)")]
    try:
        table = decode(data)
    except ValueError as error:
        return [(where, str(error))]
    expected = columns(families)
    if list(table.columns) != expected:
        return [(f"{where} columns", f"{','.join(map(str, table.columns))[:120]}; expected {','.join(expected)}")]
    if len(table) != listed["rows"]:
        return [(f"{where} rows", f"{len(table)} rows; result.json per_image.rows says {listed['rows']}")]
    classes = len(per_class)
    problems: list[tuple[str, str]] = []
    for column in ("class", "predicted"):
        values = table[column].to_numpy()
        if values.min() < 0 or values.max() >= classes:
            problems.append((f"{where} {column}", f"holds a class outside 0..{classes - 1}"))
    for column in ("top1_prob", "true_prob"):
        values = table[column].to_numpy(dtype=float)
        if not np.all((values >= 0) & (values <= 1)):
            problems.append((f"{where} {column}", "holds a value outside [0, 1] or an empty cell"))
    if problems:
        return problems
    counts = np.bincount(table["class"].to_numpy(), minlength=classes)
    if not np.array_equal(counts, per_class["test_count"].to_numpy()):
        return [(f"{where} class", "its per-class image counts are not per_class.csv's test_count")]
    correct = (table["class"] == table["predicted"]).to_numpy(dtype=float)
    accuracy = np.bincount(table["class"], weights=correct, minlength=classes) / np.maximum(counts, 1)
    stored = per_class["test_acc"].to_numpy(dtype=float)
    bad = np.flatnonzero(np.abs(accuracy - stored) > 1e-12)
    if bad.size:
        k = int(bad[0])
        problems.append((f"{where} predicted", f"gives class {k} an accuracy of {accuracy[k]:.6g}; per_class.csv test_acc says {stored[k]:.6g}"))
    for family in families:
        sampled = table[f"ekld_{family}"].notna().to_numpy()
        if not np.array_equal(sampled, table[f"consistency_{family}"].notna().to_numpy()):
            problems.append((f"{where} ekld_{family}", f"and consistency_{family} are filled for different images"))
            continue
        for kind in ("ekld", "consistency"):
            values = table[f"{kind}_{family}"].to_numpy(dtype=float)
            n = np.bincount(table["class"][sampled], minlength=classes)
            means = np.bincount(table["class"][sampled], weights=values[sampled], minlength=classes) / np.maximum(n, 1)
            stored = per_class[f"{kind}_{family}"].to_numpy(dtype=float)
            off = np.flatnonzero((n > 0) & ~np.isclose(means, stored, rtol=EKLD_TOLERANCE, atol=1e-15))
            if off.size:
                k = int(off[0])
                problems.append((f"{where} {kind}_{family}", f"gives class {k} a mean of {means[k]:.6g}; per_class.csv says {stored[k]:.6g}"))
    return problems
