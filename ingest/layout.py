"""The standard long layout (DATA_STANDARD.md §2) and how headers map onto it."""
from __future__ import annotations

import re
import unicodedata

# standard name -> (Spanish alias, required, value when the column is absent)
STANDARD_COLUMNS: dict[str, tuple[str, bool, str | None]] = {
    "reporting_country": ("pais_reporte", True, None),
    "period": ("periodo", True, None),
    "flow_type": ("tipo_flujo", True, None),
    "border_point": ("punto_fronterizo", False, "_T"),
    "counterpart_country": ("pais_contraparte", False, "_T"),
    "sex": ("sexo", True, None),
    "age": ("edad", True, None),
    "nationality": ("nacionalidad", True, None),
    "count": ("cantidad", True, None),
    "obs_status": ("estado_obs", False, "A"),
}


def normalise(text: str, joiner: str = " ") -> str:
    """How headers and profile values compare: case, accents, punctuation and spacing ignored.

    The one normalisation of the ingest layer; `normalise_sql` is its twin for
    cells compared inside DuckDB, and tests/ingest/test_layout.py holds them to
    the same answers on hard cases. Canonical decomposition (NFD), not the
    compatibility one: DuckDB's strip_accents leaves ligatures and full-width
    letters alone, and so must we, or a value map would match in one and not
    the other. (Country names compare by their key instead: macros/name_key.sql.)
    """
    text = unicodedata.normalize("NFD", text)
    text = "".join(ch for ch in text if not unicodedata.combining(ch)).lower()
    return re.sub(r"[^a-z0-9]+", joiner, text).strip(joiner)


def normalise_sql(expression: str) -> str:
    """`normalise(x)` as a DuckDB expression over a text column."""
    return f"trim(regexp_replace(lower(strip_accents({expression})), '[^a-z0-9]+', ' ', 'g'))"


def normalise_name(header: str) -> str:
    """A header as it is compared (standard §2: case, accents and spacing ignored)."""
    return normalise(header.strip().lstrip("\ufeff"), "_")


_ALIASES = {normalise_name(n): n for n in STANDARD_COLUMNS} | {
    normalise_name(alias): n for n, (alias, _, _) in STANDARD_COLUMNS.items()
}


def standard_name(header: str) -> str | None:
    return _ALIASES.get(normalise_name(header))
