import shutil

from harmonise import dbt


def test_the_fingerprint_follows_seeds_and_models_but_not_build_output(tmp_path, monkeypatch):
    project = tmp_path / "dbt_project"
    shutil.copytree(dbt.DBT_PROJECT, project, ignore=shutil.ignore_patterns("target", "logs"))
    monkeypatch.setattr(dbt, "DBT_PROJECT", project)
    before = dbt.project_fingerprint()

    (project / "target").mkdir(exist_ok=True)
    (project / "target" / "manifest.json").write_text("{}")
    assert dbt.project_fingerprint() == before

    with (project / "seeds" / "nationality_aliases.csv").open("a", encoding="utf-8") as handle:
        handle.write("Narnia,_O,test\n")
    assert dbt.project_fingerprint() != before
