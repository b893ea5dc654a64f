"""docs/code-lists.md, written from the dbt seeds: every code list with its codes and labels.

`python -m harmonise.code_lists` rewrites the document; `--check` only says
whether it is current (tests/harmonise/test_code_lists.py fails when it is not).
The code lists are the `cl_*.csv` seeds and `countries.csv`. The other seeds
are not code lists and are left out: country names and aliases are spellings
that resolve to codes, and `country_roles` and `border_point_routes` are rules
that derive codes.
"""
from __future__ import annotations

import argparse
import csv
import sys
from dataclasses import dataclass
from pathlib import Path

import yaml

from hmo.settings import PROJECT_ROOT

SEEDS = PROJECT_ROOT / "dbt_project" / "seeds"
DOC = PROJECT_ROOT / "docs" / "code-lists.md"
COMMAND = "python -m harmonise.code_lists"
# The standard's columns first, then what the warehouse derives; a new cl_*.csv
# comes after these, in name order, without anyone having to list it here.
ORDER = ["cl_sex", "cl_age", "cl_flow_type", "cl_obs_status", "cl_nat_extra",
         "cl_route", "cl_origin_scope", "cl_country_role"]
HEADERS = {"code": "code", "parent": "parent", "label_en": "English", "label_es": "Español",
           "label_fr": "Français"}
COUNTRY_COLUMNS = [("iso3", "code"), ("name_en", "English"), ("name_es", "Español"), ("conference", "conference")]


@dataclass(frozen=True)
class CodeList:
    name: str                      # the seed's file name without .csv
    description: str               # from dbt_project/seeds/_seeds.yml
    columns: list[tuple[str, str]]  # (CSV column, header shown)
    rows: list[dict[str, str]]


def _descriptions(seeds: Path) -> dict[str, str]:
    properties = seeds / "_seeds.yml"
    if not properties.exists():
        return {}
    listed = yaml.safe_load(properties.read_text(encoding="utf-8")).get("seeds") or []
    return {seed["name"]: (seed.get("description") or "").strip() for seed in listed}


def _read(path: Path) -> tuple[list[str], list[dict[str, str]]]:
    with path.open(encoding="utf-8", newline="") as handle:
        reader = csv.DictReader(handle)
        return list(reader.fieldnames or []), list(reader)


def _shown_columns(fields: list[str]) -> list[tuple[str, str]]:
    # Code and labels first, then whatever else the list carries (movement, …);
    # path is drawn as the tree instead.
    first = [c for c in ("code", "parent", "label_en", "label_es") if c in fields]
    rest = [c for c in fields if c not in first and c != "path"]
    return [(c, HEADERS.get(c, c)) for c in first + rest]


def code_lists(seeds: Path | None = None) -> list[CodeList]:
    seeds = SEEDS if seeds is None else seeds
    descriptions = _descriptions(seeds)
    names = sorted(p.stem for p in seeds.glob("cl_*.csv"))
    names = [n for n in ORDER if n in names] + [n for n in names if n not in ORDER]
    lists = []
    for name in names:
        fields, rows = _read(seeds / f"{name}.csv")
        lists.append(CodeList(name, descriptions.get(name, ""), _shown_columns(fields), rows))
    _, countries = _read(seeds / "countries.csv")
    lists.append(CodeList("countries", descriptions.get("countries", ""), COUNTRY_COLUMNS, countries))
    return lists


def _cell(value: str | None) -> str:
    return (value or "").replace("|", "\\|").replace("\n", " ").strip()


def _table(code_list: CodeList) -> list[str]:
    headers = [shown for _, shown in code_list.columns]
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    for row in code_list.rows:
        cells = [f"`{_cell(row[c])}`" if c in ("code", "iso3", "parent") and row.get(c) else _cell(row.get(c))
                 for c, _ in code_list.columns]
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def _tree(code_list: CodeList) -> list[str]:
    """Parent links drawn as a tree, children in the seed's order."""
    children: dict[str, list[dict[str, str]]] = {}
    for row in code_list.rows:
        children.setdefault(row.get("parent") or "", []).append(row)
    lines: list[str] = []

    def draw(row: dict[str, str], lead: str, branch: str) -> None:
        lines.append(f"{lead}{branch}{row['code']}  {row.get('label_en', '')} / {row.get('label_es', '')}")
        below = children.get(row["code"], [])
        inner = lead + ("" if not branch else "    " if branch == "└── " else "│   ")
        for i, child in enumerate(below):
            draw(child, inner, "└── " if i == len(below) - 1 else "├── ")

    for root in children.get("", []):
        draw(root, "", "")
    return ["```text", *lines, "```"]


def _title(code_list: CodeList) -> str:
    return "Countries (ISO 3166-1)" if code_list.name == "countries" else code_list.name.upper()


def render(lists: list[CodeList] | None = None) -> str:
    lists = code_lists() if lists is None else lists
    out = [
        "# Code lists",
        "",
        f"Generated from the seeds in `dbt_project/seeds/` by `{COMMAND}`; do not edit by hand: change the "
        "seed, then run the command again (a test fails while this file and the seeds disagree).",
        "",
        "Every code list the standard and the warehouse use, with its codes and their labels in English and "
        "Spanish: the `cl_*.csv` seeds and the country list. Country names and aliases (spellings that "
        "resolve to these codes) and the rules that derive codes (`country_roles.csv`, "
        "`border_point_routes.csv`) are seeds too, but not code lists.",
        "",
    ]
    out += [f"- [{_title(c)}](#{_anchor(_title(c))}): {len(c.rows)} codes" for c in lists]
    for code_list in lists:
        out += ["", f"## {_title(code_list)}", "",
                " ".join([f"Seed `dbt_project/seeds/{code_list.name}.csv`.", code_list.description]).strip(), ""]
        if any(c == "parent" for c, _ in code_list.columns):
            out += _tree(code_list) + [""]
        out += _table(code_list)
    return "\n".join(out) + "\n"


def _anchor(title: str) -> str:
    """GitHub's heading anchor: lower case, punctuation dropped, spaces to hyphens."""
    kept = "".join(ch for ch in title.lower() if ch.isalnum() or ch in " -_")
    return kept.replace(" ", "-")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog=COMMAND, description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only say whether the document is current")
    parser.add_argument("--out", type=Path, default=DOC, help=f"the document (default {DOC.relative_to(PROJECT_ROOT)})")
    args = parser.parse_args(argv)
    text = render()
    current = args.out.read_text(encoding="utf-8") if args.out.exists() else None
    if args.check:
        if current != text:
            print(f"{args.out} is not what the seeds say: run `{COMMAND}`", file=sys.stderr)
            return 1
        return 0
    if current != text:
        args.out.write_text(text, encoding="utf-8")
    print(f"wrote {args.out}" if current != text else f"{args.out} is current")
    return 0


if __name__ == "__main__":
    sys.exit(main())
