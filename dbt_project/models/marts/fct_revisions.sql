{{ config(materialized=mart_view()) }}

{#
  Revisions (standard Q04): each cell that an accepted submission changed from
  the accepted submission it replaced for the same reporting country, period and
  flow type (the later submission replaces the earlier, as in fct_flows). A
  cell only one of the two has is a revision too (its other count is null).
  A view: current the moment a verdict is recorded.
#}
with accepted as (
    select submission_id, decided_at
    from {{ ref('int_submission_verdicts') }}
    where status = 'accepted'
),

cells as (
    select
        observations.submission_id,
        accepted.decided_at,
        observations.reporting_country,
        observations.period,
        observations.flow_type,
        observations.border_point,
        observations.counterpart_country,
        observations.sex,
        observations.age,
        observations.nationality,
        observations.count
    from {{ ref('fct_submitted_observations') }} as observations
    join accepted using (submission_id)
    where observations.period is not null and observations.flow_type is not null
),

slices as (
    select distinct submission_id, decided_at, reporting_country, period, flow_type
    from cells
),

replacements as (
    select
        *,
        lag(submission_id) over (
            partition by reporting_country, period, flow_type order by submission_id
        ) as previous_submission_id
    from slices
),

revisions as (
    select * from replacements where previous_submission_id is not null
),

both_sides as (  -- each cell of the slice in the replacing and in the replaced submission
    select
        revisions.submission_id,
        revisions.previous_submission_id,
        revisions.decided_at,
        cells.reporting_country,
        cells.period,
        cells.flow_type,
        cells.border_point,
        cells.counterpart_country,
        cells.sex,
        cells.age,
        cells.nationality,
        max(cells.count) filter (where cells.submission_id = revisions.submission_id) as count,
        max(cells.count) filter (where cells.submission_id = revisions.previous_submission_id) as previous_count
    from revisions
    join cells
      on cells.submission_id in (revisions.submission_id, revisions.previous_submission_id)
     and cells.reporting_country = revisions.reporting_country
     and cells.period = revisions.period
     and cells.flow_type = revisions.flow_type
    group by all
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
    previous_submission_id,
    submission_id,
    decided_at as revised_at,
    previous_count,
    count,
    count - previous_count as change,
    case when previous_count > 0
        then {{ dbt.cast('100.0 * (count - previous_count) / previous_count', 'double') }}
    end as change_percent
from both_sides
where count is distinct from previous_count
