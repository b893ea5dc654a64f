{{ config(materialized=mart_view()) }}

{#
  Comparability: for each reporting country and flow type, which breakdowns its
  current figures (fct_flows) supply, and whether two come crossed in one table
  or only as separate tables that share their totals (Panama sends age and
  nationality as separate tables; Mexico sex by age without nationality). A
  cross-country figure can use only the breakdowns every country in it
  supplies, and must not add separate tables together: each repeats the total.
  `_T` is the standard's total code in every breakdown.
#}
with flows as (
    select * from {{ ref('fct_flows') }}
),

breakdowns as (
    select
        reporting_country,
        flow_type,
        min(period) as first_period,
        max(period) as last_period,
        count(distinct period) as months,
        bool_or(sex <> '_T') as by_sex,
        bool_or(age <> '_T') as by_age,
        bool_or(nationality <> '_T') as by_nationality,
        bool_or(border_point <> '_T') as by_border_point,
        bool_or(counterpart_country <> '_T') as by_counterpart_country,
        bool_or(sex <> '_T' and age <> '_T') as sex_by_age,
        bool_or(nationality <> '_T' and (sex <> '_T' or age <> '_T')) as nationality_by_sex_or_age
    from flows
    group by reporting_country, flow_type
)

select * from breakdowns
