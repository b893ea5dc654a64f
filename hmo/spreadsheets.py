"""Text that a spreadsheet would run as a formula, made inert (OWASP's advice on CSV injection).

A cell that starts with `=`, `+`, `-` or `@`, or a tab or carriage return
before one, is run as a formula when a CSV is opened in a spreadsheet. Values
statisticians typed reach our CSVs (a problem's value in a receipt, an unmapped
name, a file name), so every CSV the Observatory writes puts an apostrophe
before such text, which a spreadsheet shows as text. A plain number written
as text (`-5`, the negative count a receipt reports) runs nothing and is left
as it is, so that the statistician reads the value they sent; non-text cells
are never changed.
"""
from __future__ import annotations

import re

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
PLAIN_NUMBER = r"^[+-]?[0-9]+([.,][0-9]+)?$"
_PLAIN_NUMBER = re.compile(PLAIN_NUMBER)


def defused(value: object) -> object:
    """The value for a CSV cell: text that starts like a formula gets a leading apostrophe."""
    if isinstance(value, str) and value.startswith(FORMULA_STARTS) and not _PLAIN_NUMBER.match(value):
        return "'" + value
    return value


def defused_sql(expression: str) -> str:
    """The same in DuckDB SQL, for a text expression (the characters are literal inside the class)."""
    starts = "".join("\\" + c if c in "-]\\^" else c for c in FORMULA_STARTS)
    return (f"case when regexp_matches({expression}, '^[{starts}]') "
            f"and not regexp_matches({expression}, '{PLAIN_NUMBER}') "
            f"then '''' || {expression} else {expression} end")
