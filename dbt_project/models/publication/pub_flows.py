"""The published flows: fct_flows with every confidential count suppressed (DATA_STANDARD.md §7).

A dbt Python model because secondary suppression is linear programming (publication/suppression.py, HiGHS),
not SQL. Incremental by table: only the (country, period, flow type) tables whose figures changed since the
last build are suppressed again, each checked by the attacker first; a table the attacker breaks fails the
build, and a failed build publishes nothing (harmonise/audit.py), so the last publication stays.
"""
from publication.flows import SLICE, publish_flows

COLUMNS = ("reporting_country, period, flow_type, border_point, counterpart_country, sex, age, nationality, "
           "route, origin_scope, country_role, count, obs_status, submission_id")


def model(dbt, session):
    dbt.config(materialized="incremental", incremental_strategy="delete+insert", unique_key=["reporting_country", "period", "flow_type"],
               on_schema_change="fail")
    flows = dbt.ref("fct_flows").select(COLUMNS)
    changed = flows
    if dbt.is_incremental:
        # A table changes only with a later submission (fct_flows swaps whole tables), so the tables to do
        # again are those with a submission newer than any published: a scan of the new rows, not a
        # comparison with all of history.
        [(last,)] = session.sql(f"select coalesce(max(submission_id), 0) from {dbt.this}").fetchall()
        changed = flows.filter(f"submission_id > {int(last)}")
    ages = dict(dbt.ref("cl_age").select("code, parent").fetchall())
    thresholds = dict(dbt.ref("publication_thresholds").select("reporting_country, threshold").fetchall())
    published = session.from_df(publish_flows(changed.df(), ages, thresholds).flows)
    # pandas loses the types (dates come back as timestamps, an empty frame's text as integers): fct_flows' own
    return published.select(", ".join(f'"{name}"::{kind} as "{name}"' for name, kind in zip(flows.columns, flows.types)))
