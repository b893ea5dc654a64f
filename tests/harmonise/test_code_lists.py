"""docs/code-lists.md is generated from the seeds, and stays so."""
from __future__ import annotations

import csv
import shutil
from pathlib import Path

from harmonise import code_lists
from harmonise.code_lists import COMMAND, DOC, SEEDS, main, render


def rows(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))


def test_the_committed_document_is_what_the_seeds_say():
    written = DOC.read_text(encoding="utf-8") if DOC.exists() else ""
    assert written == render(), (
        f"{DOC.relative_to(SEEDS.parent.parent)} is not what the seeds say: run `{COMMAND}` and commit the result")


def test_every_code_list_is_listed_with_its_codes_and_both_labels():
    text = render()
    for path in sorted(SEEDS.glob("cl_*.csv")):
        assert f"## {path.stem.upper()}" in text, path.name
        for row in rows(path):
            assert f"| `{row['code']}` |" in text and f"| {row['label_en']} |" in text, (path.name, row)
            assert f"| {row['label_es']} |" in text, (path.name, row)
    for row in rows(SEEDS / "countries.csv"):
        assert f"| `{row['iso3']}` | {row['name_en']} | {row['name_es']} | {row['conference']} |" in text
    # The age list shows its tree: every code under its parent.
    tree = text.split("## CL_AGE", 1)[1].split("```text", 1)[1].split("```", 1)[0]
    assert {line.split("── ")[-1].split()[0] for line in tree.strip().splitlines()} == {
        row["code"] for row in rows(SEEDS / "cl_age.csv")}
    assert "├── Y_LT18  Under 18 / Menores de 18" in tree


def test_name_and_rule_seeds_are_not_listed():
    text = render()
    for seed in ("country_names", "nationality_aliases", "country_roles", "border_point_routes"):
        assert f"## {seed.upper()}" not in text


def test_a_seed_changed_without_regenerating_is_caught(tmp_path, monkeypatch, capsys):
    seeds = tmp_path / "seeds"
    shutil.copytree(SEEDS, seeds)
    doc = tmp_path / "code-lists.md"
    monkeypatch.setattr(code_lists, "SEEDS", seeds)
    assert main(["--out", str(doc)]) == 0
    assert main(["--check", "--out", str(doc)]) == 0

    sex = seeds / "cl_sex.csv"
    sex.write_text(sex.read_text(encoding="utf-8").replace("Mujer", "Mujeres"), encoding="utf-8")
    (seeds / "cl_new.csv").write_text("code,label_en,label_es\nX,Ex,Equis\n", encoding="utf-8")
    assert main(["--check", "--out", str(doc)]) == 1
    assert COMMAND in capsys.readouterr().err
    assert main(["--out", str(doc)]) == 0
    text = doc.read_text(encoding="utf-8")
    assert "| `F` | Female | Mujeres |" in text and "## CL_NEW" in text and "| `X` | Ex | Equis |" in text
