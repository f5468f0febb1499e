"""The one console that progress, tables and warnings are drawn on: stderr, so stdout stays data."""

from rich.console import Console

console = Console(stderr=True)

WIDE_ENOUGH = 120  # columns below which a listing's table would cut its cells


def print_listing(headers: list[str], rows: list[list[str]], out: Console | None = None) -> None:
    """A listing on stdout: a table on a terminal wide enough for it, else one block per row (the
    first column as its heading, then `header: value` lines), which reads the same piped into a
    file or a pager and never cuts a cell."""
    from rich.table import Table

    out = out or Console()
    if out.is_terminal and out.width >= WIDE_ENOUGH:
        table = Table(*headers)
        for row in rows:
            table.add_row(*row)
        out.print(table)
        return
    lines: list[str] = []
    for row in rows:
        lines.append(row[0])
        lines += [f"  {header}: {value}" for header, value in zip(headers[1:], row[1:])]
        lines.append("")
    print("\n".join(lines).rstrip("\n"))
