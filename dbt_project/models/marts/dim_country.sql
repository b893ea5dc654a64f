with countries as (
    select * from {{ ref('countries') }}
)

select
    iso3 as country_code,
    iso2,
    m49,
    name_en,
    name_es,
    name_fr,
    region,
    subregion,
    conference,
    corridor_position,
    iso_status
from countries
