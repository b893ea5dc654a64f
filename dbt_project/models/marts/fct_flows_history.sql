{#
  Every harmonised row of every accepted submission, the replaced ones too: what
  fct_flows showed at any earlier moment is in here (standard Q04). Read through
  the table macro main.flows_as_of(moment), which its post-hook creates, by
  `hmo sql --as-of` and `hmo history`. Append-only by submission: each run
  brings the submissions accepted since the last, as fct_flows does.
#}
{{ config_replaced_by_slice(['submission_id']) }}
{{ config(post_hook="{{ database_macro(create_flows_as_of()) }}") }}
-- depends_on: {{ ref('fct_verdicts') }}
{% set last_loaded = last_loaded_submission() %}

with verdicts as (
    select * from {{ ref('int_submission_verdicts') }}
),

classified as (
    select * from {{ ref('int_observations__classified') }}
),

new_submissions as (
    select submission_id
    from verdicts
    where status = 'accepted'
      and submission_id > {{ last_loaded }}
),

new_rows as (
    select classified.*
    from classified
    semi join new_submissions using (submission_id)
    where classified.submission_id > {{ last_loaded }}
)

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
from new_rows
