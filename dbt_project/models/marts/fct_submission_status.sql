{#
  Country × month: accepted, rejected or missing, for every member country from
  the first month any country reported up to last month (standard Q01). A month
  is due by the 15th of the next month.
#}
with members as (
    select iso3 as reporting_country
    from {{ ref('countries') }}
    where conference is not null
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
        coalesce(min(period), date_trunc('month', current_date)::date) as first_month,
        (date_trunc('month', current_date) - interval 1 month)::date as last_month
    from reported
),

months as (
    select unnest(generate_series(bounds.first_month, bounds.last_month, interval 1 month))::date
        as period
    from bounds
),

grid as (
    select members.reporting_country, months.period
    from members
    cross join months
)

select
    grid.reporting_country,
    grid.period,
    (grid.period + interval 1 month + interval 14 day)::date as due_date,
    case
        when reported.accepted_submissions > 0 then 'accepted'
        when reported.rejected_submissions > 0 then 'rejected'
        else 'missing'
    end as status,
    coalesce(reported.accepted_submissions, 0) as accepted_submissions,
    coalesce(reported.rejected_submissions, 0) as rejected_submissions,
    reported.first_accepted_at,
    case
        when reported.first_accepted_at is null then current_date > grid.period + interval 1 month + interval 14 day
        else reported.first_accepted_at::date > grid.period + interval 1 month + interval 14 day
    end as late
from grid
left join reported using (reporting_country, period)
