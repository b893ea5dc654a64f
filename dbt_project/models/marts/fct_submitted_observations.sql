{#
  Every submitted row, accepted or not, each coded column resolved where it
  can be, beside the value as sent: what the expectation suites validate and
  `hmo check` previews. A view: filtered by submission, DuckDB pushes the
  filter down to the raw scan, so reading one submission costs that one.
#}
{{ config(materialized=mart_view(), post_hook="{{ database_macro(create_country_name_resolver()) }}") }}

select
    submission_id,
    source_row,
    inbox_country,
    reporting_country_value,
    reporting_country,
    period_value,
    period,
    flow_type_value,
    flow_type,
    border_point,
    counterpart_country_value,
    counterpart_country,
    counterpart_country_ambiguous,
    sex_value,
    sex,
    age_value,
    age,
    nationality_value,
    nationality,
    nationality_ambiguous,
    count_value,
    count,
    obs_status_value,
    obs_status
from {{ ref('int_observations__resolved') }}
