"""Storage primitives: atomic writes, staged folders, locks, writability probes, bounded JSON. They know nothing of records."""
