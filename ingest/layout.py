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


def normalise_name(header: str) -> str:
    """Case, accents and spacing in names are ignored (standard §2)."""
    text = unicodedata.normalize("NFKD", header.strip().lstrip("\ufeff"))
    text = "".join(ch for ch in text if not unicodedata.combining(ch)).lower()
    return re.sub(r"[^a-z0-9]+", "_", text).strip("_")


_ALIASES = {normalise_name(n): n for n in STANDARD_COLUMNS} | {
    normalise_name(alias): n for n, (alias, _, _) in STANDARD_COLUMNS.items()
}


def standard_name(header: str) -> str | None:
    return _ALIASES.get(normalise_name(header))
