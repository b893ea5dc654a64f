{#
  One row per received file with its verdict as it stands: what receipts,
  `hmo status` and the report read. A view, so it is current the moment a
  verdict is recorded, whether or not the marts were rebuilt since.
#}
{{ config(materialized=mart_view()) }}

with submissions as (
    select * from {{ ref('stg_raw__submissions') }}
    where load_state = 'received'
),

verdicts as (
    select * from {{ ref('int_submission_verdicts') }}
),

failures as (
    select
        submission_id,
        count(*) filter (where severity = 'error') as errors,
        count(*) filter (where severity = 'warning') as warnings,
        {{ sorted_distinct_list('rule_id') }} as rules_failed
    from {{ ref('stg_validation__rule_failures') }}
    group by submission_id
)

select
    submissions.submission_id,
    submissions.reporting_country,
    submissions.file_name,
    submissions.archive_path,
    submissions.sha256,
    submissions.size_bytes,
    submissions.encoding,
    submissions.delimiter,
    submissions.profile,
    submissions.column_names,
    submissions.data_rows,
    submissions.notes,
    submissions.sum_duplicates,
    submissions.received_at,
    coalesce(verdicts.status, 'received') as status,
    verdicts.decided_by,
    verdicts.decided_at,
    coalesce(failures.errors, 0) as errors,
    coalesce(failures.warnings, 0) as warnings,
    coalesce(failures.rules_failed, {{ dbt.array_construct([], dbt.type_string()) }}) as rules_failed
from submissions
left join verdicts using (submission_id)
left join failures using (submission_id)
