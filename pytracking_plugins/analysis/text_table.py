"""Aligned plain-text tables, as the commands print them: a header, a dashed rule, then the rows."""
from typing import List, Sequence


def format_table(header: Sequence[object], rows: Sequence[Sequence[object]], left_columns: int = 1) -> str:
    """Columns two spaces apart; the first ``left_columns`` left-aligned (names), the rest right-aligned (numbers)."""
    cells: List[List[str]] = [[str(c) for c in header]] + [[str(c) for c in row] for row in rows]
    widths = [max(len(cell) for cell in column) for column in zip(*cells)]

    def line(values: List[str]) -> str:
        return '  '.join(v.ljust(w) if i < left_columns else v.rjust(w) for i, (v, w) in enumerate(zip(values, widths)))

    return '\n'.join([line(cells[0]), '  '.join('-' * w for w in widths)] + [line(r) for r in cells[1:]])
