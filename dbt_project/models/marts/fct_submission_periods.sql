{# Which months each submission covers, with its row count: built once per
   submission, so the status grid does not re-read the history. #}
{{
    config(
        materialized='incremental',
        incremental_strategy='append',
    )
}}

with resolved as (
    select * from {{ ref('int_observations__resolved') }}
    where submission_id > {{ last_loaded_submission() }}
)

select
    submission_id,
    period,
    count(*) as observations
from resolved
where period is not null
group by submission_id, period
