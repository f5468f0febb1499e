"""For datasets whose per-class totals are published nowhere (GTSRB's training set, Kuzushiji-49):
the totals are counted from the files when they are there, and the manifest is built from them
until a frozen one is committed."""

from __future__ import annotations

from pathlib import Path

from tailbench.datasets.manifest import Manifest, load_frozen
from tailbench.datasets.sources import MissingFiles, default_data_dir
from tailbench.errors import UserError


class CountedTotals:
    """A mixin before the DatasetBuilder base: `count_totals(data_dir)` reads the per-class totals
    from the files; `where_the_totals_are(folder)` says in words where they come from and what to
    put where."""

    def count_totals(self, data_dir: Path) -> dict[str, list[int]]:
        raise NotImplementedError

    def where_the_totals_are(self, folder: Path) -> str:
        raise NotImplementedError

    def official_totals(self, data_dir: Path | None = None) -> dict[str, list[int]] | None:
        """Counted from the files (in data_dir, else the default data folder) when they are there;
        files there but unreadable or corrupt are reported as such."""
        try:
            return self.count_totals(data_dir or default_data_dir())
        except MissingFiles:
            if data_dir is not None:
                raise
            return None

    def manifest(self, source_totals: dict[str, list[int]] | None = None, data_dir: Path | None = None) -> tuple[Manifest, bool]:
        if source_totals is None and load_frozen(self.dataset_id) is None:
            source_totals = self.official_totals(data_dir)
            if source_totals is None:
                raise UserError(f"{self.dataset_id}: no frozen manifest is committed yet and {self.where_the_totals_are(default_data_dir())}, "
                                "and run this again")
        return super().manifest(source_totals)
