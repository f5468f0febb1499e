"""Copies of a real digits-lt record to edit: what submit and the record checks are tested on."""

from __future__ import annotations

import json
import shutil

BENCHMARK = "digits-lt@epochs=1"


def copy_of(record, tmp_path, name="candidate"):
    target = tmp_path / name / BENCHMARK / "ce" / "seed-0"
    shutil.copytree(record, target)
    return target


def edit_result(directory, change):
    path = directory / "result.json"
    result = json.loads(path.read_text())
    change(result)
    path.write_text(json.dumps(result, indent=2))


def set_field(path, value):
    """An edit for edit_result: set the value at a path of keys and indexes."""
    def change(result):
        node = result
        for key in path[:-1]:
            node = node[key]
        node[path[-1]] = value
    return change


def delete_field(path):
    """An edit for edit_result: remove the key at a path."""
    def change(result):
        node = result
        for key in path[:-1]:
            node = node[key]
        del node[path[-1]]
    return change
