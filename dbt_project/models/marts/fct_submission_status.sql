{#
  Country × month: accepted, rejected or missing, for every member country from
  the first month any country reported up to last month (standard Q01). Month M
  is due by day `due_day` of month M+1, the country's own in the seed
  reporting_deadlines (the standard's 15th unless the country agreed another).
  The var `status_through` (a month, 'YYYY-MM-01') ends the grid elsewhere than
  at last month: unit tests, whose answer must not depend on today.
#}
with members as (
    select iso3 as reporting_country
    from {{ ref('countries') }}
    where conference is not null
),

deadlines as (
    select reporting_country, due_day
    from {{ ref('reporting_deadlines') }}
),

submissions as (
    select
        submissions.submission_id,
        submissions.reporting_country,
        verdicts.status,
        verdicts.decided_at
    from {{ ref('stg_raw__submissions') }} as submissions
    join {{ ref('int_submission_verdicts') }} as verdicts using (submission_id)
),

submission_periods as (
    select submission_id, period
    from {{ ref('fct_submission_periods') }}
),

reported as (
    select
        submissions.reporting_country,
        submission_periods.period,
        min(submissions.decided_at) filter (where submissions.status = 'accepted')
            as first_accepted_at,
        count(*) filter (where submissions.status = 'accepted') as accepted_submissions,
        count(*) filter (where submissions.status = 'rejected') as rejected_submissions
    from submission_periods
    join submissions using (submission_id)
    group by all
),

bounds as (
    select
        coalesce(min(period), {{ dbt.cast("date_trunc('month', current_date)", 'date') }}) as first_month,
        {% if var('status_through', none) -%}
        date '{{ var("status_through") }}' as last_month
        {%- else -%}
        {{ dbt.cast(dbt.dateadd('month', -1, "date_trunc('month', current_date)"), 'date') }} as last_month
        {%- endif %}
    from reported
),

months as (
    select {{ month_series('bounds.first_month', 'bounds.last_month') }} as period
    from bounds
),

grid as (
    select
        members.reporting_country,
        months.period,
        {{ dbt.cast(dbt.dateadd('day', 'deadlines.due_day - 1', dbt.dateadd('month', 1, 'months.period')), 'date') }}
            as due_date
    from members
    cross join months
    left join deadlines using (reporting_country)
)

select
    grid.reporting_country,
    grid.period,
    grid.due_date,
    case
        when reported.accepted_submissions > 0 then 'accepted'
        when reported.rejected_submissions > 0 then 'rejected'
        else 'missing'
    end as status,
    coalesce(reported.accepted_submissions, 0) as accepted_submissions,
    coalesce(reported.rejected_submissions, 0) as rejected_submissions,
    reported.first_accepted_at,
    case
        when reported.first_accepted_at is null then current_date > grid.due_date
        else {{ dbt.cast('reported.first_accepted_at', 'date') }} > grid.due_date
    end as late
from grid
left join reported using (reporting_country, period)
