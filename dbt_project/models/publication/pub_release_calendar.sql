{{ config(materialized='view') }}

{#
  The release calendar: when each reference month's figures are (or were) published. The rule is the
  project's `release_day` of the month after the reference month; release_calendar lists the exceptions.
  Nothing of a month is in pub_flows before its release date (the embargo).
#}
with months as (
    select distinct period from {{ ref('fct_flows') }}
    union
    select period from {{ ref('release_calendar') }}
),

exceptions as (
    select * from {{ ref('release_calendar') }}
),

calendar as (
    select
        months.period,
        coalesce(
            exceptions.release_date,
            {{ dbt.cast(dbt.dateadd('day', var('release_day', 25) - 1, dbt.dateadd('month', 1, 'months.period')), 'date') }}
        ) as release_date,
        exceptions.note_en,
        exceptions.note_es
    from months
    left join exceptions using (period)
)

select
    period,
    release_date,
    release_date <= current_date as released,
    note_en,
    note_es
from calendar
