{# A view so that dbt unit tests can exercise each classification rule. #}
{{ config(materialized='view') }}

{# Standard §5: route, origin scope and country role, by rules kept in seeds. #}
with observations as (
    select * from {{ ref('int_observations__resolved') }}
),

countries as (
    select * from {{ ref('countries') }}
),

flow_types as (
    select * from {{ ref('cl_flow_type') }}
),

border_point_routes as (
    select * from {{ ref('border_point_routes') }}
),

country_roles as (
    select * from {{ ref('country_roles') }}
),

joined as (
    select
        observations.*,
        nationality_country.region as nationality_region,
        nationality_country.conference as nationality_conference,
        reporting.conference as reporting_conference,
        reporting.corridor_position as reporting_position,
        counterpart.corridor_position as counterpart_position,
        flow_types.movement,
        border_point_routes.route as border_point_route,
        case
            when observations.nationality = observations.reporting_country
            then country_roles.role_for_nationals
            else country_roles.role_for_foreigners
        end as country_role
    from observations
    left join countries as nationality_country
        on nationality_country.iso3 = observations.nationality
    left join countries as reporting on reporting.iso3 = observations.reporting_country
    left join countries as counterpart on counterpart.iso3 = observations.counterpart_country
    left join flow_types on flow_types.code = observations.flow_type
    left join border_point_routes
        on border_point_routes.reporting_country = observations.reporting_country
       and upper(border_point_routes.border_point) = upper(observations.border_point)
    left join country_roles on country_roles.flow_type = observations.flow_type
)

select
    *,
    case
        when nationality_region is not null and nationality_region <> 'Americas'
            then 'EXTRACONTINENTAL'
        when border_point_route is not null then border_point_route
        when reporting_position is null or counterpart_position is null
            or reporting_position = counterpart_position then '_U'
        when (movement = 'inbound') = (reporting_position > counterpart_position)
            then 'NORTH_BOUND'
        else 'SOUTH_BOUND'
    end as route,
    case
        when nationality_conference is not null
            and nationality_conference = reporting_conference then 'INTRA_REGIONAL'
        when nationality_region = 'Americas' then 'EXTRA_REGIONAL'
        when nationality_region is not null then 'EXTRACONTINENTAL'
        else '_U'
    end as origin_scope
from joined
