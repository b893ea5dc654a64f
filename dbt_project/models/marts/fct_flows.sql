{#
  Harmonised flows of accepted submissions. A later accepted submission for the
  same (reporting country, period, flow type) replaces the earlier one: each run
  brings only submissions accepted since the last (from fct_flows_history, which
  keeps every version), and delete+insert on that key swaps whole slices, so a
  run costs what arrived, not the history.
#}
{{ config_replaced_by_slice(['reporting_country', 'period', 'flow_type']) }}
{% set last_loaded = last_loaded_submission() %}

with new_rows as (  -- the accepted submissions' rows that arrived since the last run, classified once
    select *
    from {{ ref('fct_flows_history') }}
    where submission_id > {{ last_loaded }}
),

-- a window, not a join on the slice: a row with a null key (one that slipped past the suites) stays for the audit
latest_per_slice as (
    select
        *,
        max(submission_id) over (partition by reporting_country, period, flow_type) as latest_submission_id
    from new_rows
)

-- fct_flows_history's columns, in the contract's order
select
    reporting_country,
    period,
    flow_type,
    border_point,
    counterpart_country,
    sex,
    age,
    nationality,
    route,
    origin_scope,
    country_role,
    count,
    obs_status,
    submission_id,
    source_row
from latest_per_slice
where submission_id = latest_submission_id
