"""Write the country-name seed from ISO 3166's own translations and CLDR.

    python -m harmonise.country_names          # rewrites dbt_project/seeds/country_names.csv
    python -m harmonise.country_names --check  # exit 1 when the committed seed is stale

Names come from two maintained sources rather than a hand-kept list:
iso-codes as `pycountry` ships it (ISO 3166-1 `name`, `official_name` and
`common_name`, translated into the member languages; ISO 3166-3 for the
withdrawn codes agencies still write) and CLDR's territory names as `babel`
ships them. Each row says where the name comes from, so that a reviewer sees
why a spelling resolves. Hand-made spellings the sources lack stay in
`nationality_aliases.csv` (and national ones in ingest/aliases/).
"""
from __future__ import annotations

import argparse
import csv
import gettext
import io
import sys
from collections.abc import Iterator

from harmonise.dbt import DBT_PROJECT

SEED = DBT_PROJECT / "seeds" / "country_names.csv"
COUNTRIES = DBT_PROJECT / "seeds" / "countries.csv"

# The languages of the members (standard §3): Spanish, English, French,
# Portuguese (Brazil) and Dutch (Suriname).
ISO_LANGUAGES = ("en", "es", "fr", "pt", "nl")
ISO_FIELDS = ("name", "official_name", "common_name")
CLDR_LOCALES = ("en", "es", "es_419", "es_MX", "fr", "fr_CA", "pt", "pt_PT", "nl")


def _observatory_codes() -> dict[str, str]:
    """alpha-3 -> alpha-2 of every code the countries seed lists (the names' universe)."""
    with COUNTRIES.open(encoding="utf-8") as handle:
        return {row["iso3"]: row["iso2"] for row in csv.DictReader(handle)}


def _translator(domain: str, language: str):  # type: ignore[no-untyped-def]
    import pycountry

    if language == "en":
        return lambda text: text
    return gettext.translation(domain, pycountry.LOCALES_DIR, languages=[language]).gettext


def iso_names() -> Iterator[tuple[str, str, str]]:
    """(code, name, source) for every ISO 3166 name in every member language."""
    import pycountry

    codes = _observatory_codes()
    for domain, entries in (("iso3166-1", pycountry.countries), ("iso3166-3", pycountry.historic_countries)):
        translators = {language: _translator(domain, language) for language in ISO_LANGUAGES}
        for entry in entries:
            if entry.alpha_3 not in codes:
                continue
            for field in ISO_FIELDS:
                english = getattr(entry, field, None)
                if not english:
                    continue
                for language, translate in translators.items():
                    yield entry.alpha_3, translate(english), f"{domain}:{language}:{field}"


def cldr_names() -> Iterator[tuple[str, str, str]]:
    """(code, name, source) for CLDR's territory names in each member locale."""
    from babel import Locale

    # alpha-2 codes are reused (CS was Czechoslovakia, then Serbia and
    # Montenegro): CLDR names only territories that exist, so map the codes in use.
    by_alpha2 = {alpha2: alpha3 for alpha3, alpha2 in _observatory_codes().items()
                 if alpha3 not in {"ANT", "CSK", "SCG", "SUN", "YUG"}}
    for locale in CLDR_LOCALES:
        for territory, name in Locale.parse(locale).territories.items():
            if territory in by_alpha2:
                yield by_alpha2[territory], name, f"cldr:{locale}"


def rows() -> list[tuple[str, str, str]]:
    """(code, name, sources): one row per distinct spelling of a code, sources joined."""
    sources: dict[tuple[str, str], list[str]] = {}
    for code, name, source in [*iso_names(), *cldr_names()]:
        found = sources.setdefault((code, name.strip()), [])
        if source not in found:
            found.append(source)
    return [(code, name, ";".join(found)) for (code, name), found in sorted(sources.items())]


def render() -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["code", "name", "sources"])
    writer.writerows(rows())
    return buffer.getvalue()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="exit 1 if the committed seed differs")
    args = parser.parse_args(argv)
    text = render()
    if args.check:
        current = SEED.read_text(encoding="utf-8") if SEED.exists() else ""
        if current != text:
            print(f"{SEED} is stale: run `python -m harmonise.country_names`", file=sys.stderr)
            return 1
        return 0
    SEED.write_text(text, encoding="utf-8")
    print(f"wrote {SEED} ({text.count(chr(10)) - 1} names)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
