{# Every failure of the standard's rules, with the submission's country: what receipts and the report list. #}
{{ config(materialized=mart_view()) }}

with failures as (
    select * from {{ ref('stg_validation__rule_failures') }}
),

submissions as (
    select submission_id, reporting_country, file_name from {{ ref('stg_raw__submissions') }}
)

select
    failures.submission_id,
    submissions.reporting_country,
    submissions.file_name,
    failures.rule_id,
    failures.severity,
    failures.source_row,
    failures.column_name,
    failures.value,
    failures.detail
from failures
join submissions using (submission_id)
