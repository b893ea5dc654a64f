"""The published flows: fct_flows with every confidential count suppressed (DATA_STANDARD.md §7).

A dbt Python model because secondary suppression is linear programming (publication/suppression.py, HiGHS),
not SQL. Only months whose release date has come (pub_release_calendar). Incremental by table: only the
(country, period, flow type) tables whose figures changed or were released since the last build are
suppressed again, each checked by the attacker first; a table the attacker breaks fails the
build, and a failed build publishes nothing (harmonise/audit.py), so the last publication stays.
"""
from publication.flows import SLICE, publish_flows

COLUMNS = ("reporting_country, period, flow_type, border_point, counterpart_country, sex, age, nationality, "
           "route, origin_scope, country_role, count, obs_status, submission_id")


def model(dbt, session):
    dbt.config(materialized="incremental", incremental_strategy="delete+insert", unique_key=["reporting_country", "period", "flow_type"],
               on_schema_change="fail")
    released = dbt.ref("pub_release_calendar").filter("released").select("period").set_alias("released")
    # The embargo: nothing of a month before its release date. Revisions of a released month are published
    # at once (docs/standard.md, "Release calendar and revisions").
    flows = dbt.ref("fct_flows").select(COLUMNS).set_alias("flows").join(released, "period")
    changed = flows
    if dbt.is_incremental:
        # The tables to do again: those whose version (submission) is not the one published, because a
        # revision replaced it or its month has just been released. One pass over the tables' keys.
        versions = flows.select(", ".join(SLICE) + ", submission_id").distinct()
        published = session.sql(f"select distinct {', '.join(SLICE)}, submission_id from {dbt.this}")
        todo = versions.except_(published).select(", ".join(SLICE)).set_alias("todo")
        changed = flows.join(todo, ", ".join(SLICE))
    ages = dict(dbt.ref("cl_age").select("code, parent").fetchall())
    thresholds = dict(dbt.ref("publication_thresholds").select("reporting_country, threshold").fetchall())
    published = session.from_df(publish_flows(changed.df(), ages, thresholds).flows)
    # pandas loses the types (dates come back as timestamps, an empty frame's text as integers): fct_flows' own
    return published.select(", ".join(f'"{name}"::{kind} as "{name}"' for name, kind in zip(flows.columns, flows.types)))
