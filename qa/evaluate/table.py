"""A table of metrics, one row per mode, for the terminal and the docs."""

from __future__ import annotations


def format_table(table: dict[str, dict]) -> str:
    """Render one row per mode, one column per metric."""
    columns = list(dict.fromkeys(c for row in table.values() for c in row if c != "ranks"))
    widths = [max(len(c), 7) for c in columns]
    lines = ["| mode    | " + " | ".join(c.ljust(w) for c, w in zip(columns, widths)) + " |"]
    lines.append("|---------|" + "|".join("-" * (w + 2) for w in widths) + "|")
    for mode, row in table.items():
        cells = [f"{row[c]:.3f}" if isinstance(row.get(c), float) else str(row.get(c, "")) for c in columns]
        lines.append(f"| {mode.ljust(7)} | " + " | ".join(c.ljust(w) for c, w in zip(cells, widths)) + " |")
    return "\n".join(lines)
