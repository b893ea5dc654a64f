{#
  main.flows_as_of(moment): fct_flows as it stood just before `moment` (a
  timestamp with time zone): for each (reporting country, period, flow type),
  the rows of the latest submission whose last verdict decided before that
  moment was accepted, as fct_flows chooses them now. Created by a post-hook of
  fct_flows_history, once it and fct_verdicts are built.
#}
{% macro create_flows_as_of() -%}
create or replace macro main.flows_as_of(moment) as table
with verdicts as (
    select submission_id, status
    from {{ ref('fct_verdicts') }}
    where decided_at < moment
    qualify row_number() over (partition by submission_id order by decided_at desc, verdict_id desc) = 1
),

accepted as (
    select submission_id from verdicts where status = 'accepted'
)

select history.*
from {{ this }} as history
semi join accepted using (submission_id)
qualify history.submission_id = max(history.submission_id) over (
    partition by history.reporting_country, history.period, history.flow_type
)
{%- endmacro %}
