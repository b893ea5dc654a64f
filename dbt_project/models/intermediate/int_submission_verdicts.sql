{{ config(materialized='view') }}

{# Each submission's verdict: the latest given (the audit's A01 follows the suites'). #}
with verdicts as (
    select * from {{ ref('stg_validation__verdicts') }}
),

ranked as (
    select
        submission_id,
        status,
        decided_by,
        decided_at,
        row_number() over (partition by submission_id order by verdict_id desc) as verdict_rank
    from verdicts
)

select
    submission_id,
    status,
    decided_by,
    decided_at
from ranked
where verdict_rank = 1
