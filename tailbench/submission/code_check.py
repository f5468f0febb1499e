"""Does a record's code digest match the commit it names? Checked for records made from a copy of
the tree without .git (a GPU machine's), whose commit was passed in through $TAILBENCH_COMMIT."""

from __future__ import annotations

import subprocess
from pathlib import Path

from tailbench.benchmarks.provenance import COMMIT_ENV, PACKAGE_ROOT, code_digest_of

REPO = PACKAGE_ROOT.parent


def files_at_commit(commit: str, repo: Path = REPO) -> dict[str, bytes] | None:
    """The tailbench package's files as `commit` has them, or None when this checkout lacks it."""
    try:
        listing = subprocess.run(
            ["git", "ls-tree", "-r", "-z", commit, "--", PACKAGE_ROOT.name], cwd=repo, capture_output=True, timeout=60,
        )
        if listing.returncode != 0:
            return None
        entries = [line.split(b"\t", 1) for line in listing.stdout.split(b"\0") if line]
        blobs = [(meta.split()[2].decode(), path.decode()) for meta, path in entries if meta.split()[1] == b"blob"]
        batch = subprocess.run(
            ["git", "cat-file", "--batch"], cwd=repo, input=b"".join(f"{sha}\n".encode() for sha, _ in blobs),
            capture_output=True, timeout=60,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    files, out, at = {}, batch.stdout, 0
    for sha, path in blobs:
        header_end = out.index(b"\n", at)
        size = int(out[at:header_end].split()[2])
        files[path] = out[header_end + 1 : header_end + 1 + size]
        at = header_end + 1 + size + 1  # the content, then a newline
    return files


def code_problems(result: dict) -> list[tuple[str, str]]:
    provenance = result["provenance"]
    git = provenance["git"]
    if git.get("source") != COMMIT_ENV:
        return []
    digest, commit = provenance.get("code_sha256"), git["commit"]
    if not digest:
        return [("provenance.code_sha256", f"missing; a record whose commit came from ${COMMIT_ENV} must carry its code digest")]
    files = files_at_commit(commit)
    if files is None:
        return [("provenance.git.commit", f"{commit[:12]} is not a commit of this checkout; fetch it, then submit again")]
    if code_digest_of(files) != digest:
        return [("provenance.code_sha256", f"does not match the files of commit {commit[:12]}: the run did not run that commit's code")]
    return []
