{{ config(materialized=mart_view()) }}

{#
  Every verdict each submission got, in the order given (validation's own
  append-only record): the suites', the audit's, a rebuild's. The current one
  is the latest; what stood at an earlier moment is the latest before it.
#}
with verdicts as (
    select * from {{ ref('stg_validation__verdicts') }}
)

select
    verdict_id,
    submission_id,
    status,
    decided_by,
    decided_at
from verdicts
