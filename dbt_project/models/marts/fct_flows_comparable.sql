{{ config(materialized=mart_view()) }}

{#
  Every country's current flows rolled up to the level every country can give:
  the total, and the total by sex, by age group (the children of `_T` in CL_AGE:
  under 18, 18 and over, unknown), by sex and age group, by nationality and by
  route, each summed over border points and counterpart countries.

  Standard §4: the warehouse never adds rows of different cross-sections
  together. A slice (country, period, flow type) may hold several
  cross-sections ("tables": the rows that break down the same dimensions, such
  as Panama's sex by age and its nationality table); each figure here comes
  from one of them, the one that needs the fewest dimensions summed away, so a
  grand total that was sent is used as it is. Route is decided by nationality
  first (standard §5), so route figures come from a table by nationality where
  the slice has one. A table with a count suppressed at the source (status Q)
  gives a figure with no count and status Q, and is taken only when no whole
  table gives that figure.
#}
with flows as (
    select * from {{ ref('fct_flows') }}
),

ages as (
    select * from {{ ref('cl_age') }}
),

cells as (
    select
        flows.reporting_country,
        flows.period,
        flows.flow_type,
        flows.border_point,
        flows.counterpart_country,
        flows.sex,
        flows.age,
        flows.nationality,
        flows.route,
        flows.count,
        flows.obs_status,
        ages.path as age_path,
        coalesce(nullif({{ dbt.split_part('ages.path', "'/'", 3) }}, ''), '_T') as age_group,
        flows.sex <> '_T' as by_sex,
        flows.age <> '_T' as by_age,
        flows.nationality <> '_T' as by_nationality,
        flows.border_point <> '_T' as by_border_point,
        flows.counterpart_country <> '_T' as by_counterpart_country
    from flows
    inner join ages on ages.code = flows.age
),

-- A cell whose age band lies inside another band of the same table row (under 12 beside
-- under 18) would count its persons twice once both roll up to the age group.
outermost_age_bands as (
    select cells.*
    from cells
    where not exists (
        select 1
        from cells as wider
        where wider.reporting_country = cells.reporting_country
          and wider.period = cells.period
          and wider.flow_type = cells.flow_type
          and wider.border_point = cells.border_point
          and wider.counterpart_country = cells.counterpart_country
          and wider.sex = cells.sex
          and wider.nationality = cells.nationality
          and wider.age <> '_T'
          and {{ starts_with('cells.age_path', dbt.concat(['wider.age_path', "'/'"])) }}
    )
),

tables as (
    select
        reporting_country,
        period,
        flow_type,
        by_sex,
        by_age,
        by_nationality,
        by_border_point,
        by_counterpart_country,
        bool_and(count is not null) as whole,
        concat_ws(' × ',
            case when by_sex then 'sex' end,
            case when by_age then 'age' end,
            case when by_nationality then 'nationality' end,
            case when by_border_point then 'border_point' end,
            case when by_counterpart_country then 'counterpart_country' end
        ) as cross_section
    from outermost_age_bands
    group by all
),

breakdowns as (
    select * from {{ ref('cl_breakdown') }}
),

ranked_tables as (
    select
        tables.*,
        breakdowns.code as breakdown,
        breakdowns.by_sex as keeps_sex,
        breakdowns.by_age_group as keeps_age_group,
        breakdowns.by_nationality as keeps_nationality,
        breakdowns.by_route as keeps_route,
        row_number() over (
            partition by tables.reporting_country, tables.period, tables.flow_type, breakdowns.code
            order by
                not tables.whole,
                breakdowns.by_route and not tables.by_nationality,
                {{ dbt.cast('tables.by_sex', 'int') }} + {{ dbt.cast('tables.by_age', 'int') }}
                    + {{ dbt.cast('tables.by_nationality', 'int') }} + {{ dbt.cast('tables.by_border_point', 'int') }}
                    + {{ dbt.cast('tables.by_counterpart_country', 'int') }},
                tables.cross_section
        ) as table_rank
    from tables
    cross join breakdowns
    where (tables.by_sex or not breakdowns.by_sex)
      and (tables.by_age or not breakdowns.by_age_group)
      and (tables.by_nationality or not breakdowns.by_nationality)
),

chosen_tables as (
    select *
    from ranked_tables
    where table_rank = 1
),

rolled_up as (
    select
        cells.reporting_country,
        cells.period,
        cells.flow_type,
        chosen_tables.breakdown,
        case when chosen_tables.keeps_sex then cells.sex else '_T' end as sex,
        case when chosen_tables.keeps_age_group then cells.age_group else '_T' end as age_group,
        case when chosen_tables.keeps_nationality then cells.nationality else '_T' end as nationality,
        case when chosen_tables.keeps_route then cells.route else '_T' end as route,
        -- sum() skips nulls: a table with a count suppressed at the source has no sum
        case when bool_and(cells.count is not null) then {{ dbt.cast('sum(cells.count)', 'bigint') }} end as count,
        case
            when bool_or(cells.obs_status = 'Q') then 'Q'
            when bool_or(cells.obs_status = 'E') then 'E'
            when bool_or(cells.obs_status = 'P') then 'P'
            else 'A'
        end as obs_status,
        chosen_tables.cross_section
    from outermost_age_bands as cells
    inner join chosen_tables
        on chosen_tables.reporting_country = cells.reporting_country
       and chosen_tables.period = cells.period
       and chosen_tables.flow_type = cells.flow_type
       and chosen_tables.by_sex = cells.by_sex
       and chosen_tables.by_age = cells.by_age
       and chosen_tables.by_nationality = cells.by_nationality
       and chosen_tables.by_border_point = cells.by_border_point
       and chosen_tables.by_counterpart_country = cells.by_counterpart_country
    group by all
)

select
    reporting_country,
    period,
    flow_type,
    breakdown,
    sex,
    age_group,
    nationality,
    route,
    count,
    obs_status,
    cross_section
from rolled_up
