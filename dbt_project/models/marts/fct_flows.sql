{#
  Harmonised flows of accepted submissions. A later accepted submission for the
  same (reporting country, period, flow type) replaces the earlier one: each run
  brings only submissions accepted since the last (from fct_flows_history, which
  keeps every version), and delete+insert on that key swaps whole slices, so a
  run costs what arrived, not the history.
#}
{{
    config(
        materialized='incremental',
        incremental_strategy='delete+insert',
        unique_key=['reporting_country', 'period', 'flow_type'],
        on_schema_change='fail',
    )
}}
{% set last_loaded = last_loaded_submission() %}

with new_rows as (  -- the accepted submissions' rows that arrived since the last run, classified once
    select *
    from {{ ref('fct_flows_history') }}
    where submission_id > {{ last_loaded }}
),

latest_per_slice as (
    select *
    from new_rows
    qualify submission_id = max(submission_id) over (
        partition by reporting_country, period, flow_type
    )
)

-- fct_flows_history's columns, in the contract's order
select * from latest_per_slice
