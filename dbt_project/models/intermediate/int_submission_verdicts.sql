{{ config(materialized='view') }}

{# Each submission's verdict: the latest given (the audit's A01 follows the suites'). #}
with verdicts as (
    select * from {{ ref('stg_validation__verdicts') }}
)

select
    submission_id,
    status,
    decided_by,
    decided_at
from verdicts
qualify row_number() over (partition by submission_id order by verdict_id desc) = 1
