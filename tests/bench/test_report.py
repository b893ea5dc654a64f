"""Each benchmark rewrites its own section of docs/benchmarks.md and keeps every other one."""
from __future__ import annotations

from pathlib import Path

from bench import check, spark, watch
from bench.report import kept_section, write_section
from hmo.settings import PROJECT_ROOT

OTHER = ["<!-- other:start -->", "## 6. Someone else's figures", "kept", "<!-- other:end -->"]


def section(module, title: str) -> list[str]:
    return [module.START, title, "", "figures", module.END]


def test_writing_one_benchmarks_section_keeps_the_others_where_they_were(tmp_path: Path) -> None:
    page = tmp_path / "benchmarks.md"
    page.write_text("# Benchmarks\n\n" + "\n".join(OTHER) + "\n\n## Where the time goes\n\nnotes\n")

    write_section(page, section(spark, "## 9. Spark"), spark.START, spark.END)
    write_section(page, section(watch, "## 7. serve"), watch.START, watch.END)
    write_section(page, [spark.START, "## 9. Spark", "", "new figures", spark.END], spark.START, spark.END)

    text = page.read_text()
    assert "\n".join(OTHER) in text
    assert kept_section(page, spark.START, spark.END) == [spark.START, "## 9. Spark", "", "new figures", spark.END]
    assert text.index("## 7. serve") < text.index("## Where the time goes")
    assert kept_section(page, watch.START, watch.END) == section(watch, "## 7. serve")
    assert kept_section(page, check.START, check.END) == []


def test_the_committed_page_has_each_benchmarks_section_once() -> None:
    text = (PROJECT_ROOT / "docs" / "benchmarks.md").read_text()
    for module in (check, watch, spark):
        assert text.count(module.START) == 1 and text.count(module.END) == 1, module.__name__

