{# Every spelling of a country (or CL_NAT_EXTRA code) the Observatory knows,
   with where it comes from: ISO 3166 and CLDR (the generated seed), the display
   names of the code lists, and the agency aliases the sources lack. #}
{{ config(materialized='view') }}

with generated as (
    select code, name, sources as source from {{ ref('country_names') }}
),

countries as (
    select * from {{ ref('countries') }}
),

extra_codes as (
    select * from {{ ref('cl_nat_extra') }}
),

aliases as (
    select code, alias as name, source from {{ ref('nationality_aliases') }}
),

listed as (
    select iso3 as code, name_en as name, 'countries seed' as source from countries
    union all select iso3, name_es, 'countries seed' from countries
    union all select iso3, name_fr, 'countries seed' from countries
    union all select code, label_en, 'cl_nat_extra' from extra_codes
    union all select code, label_es, 'cl_nat_extra' from extra_codes
    union all select code, label_fr, 'cl_nat_extra' from extra_codes
),

spellings as (
    select * from generated
    union all select * from listed
    union all select * from aliases
)

select
    code,
    name,
    source,
    name_key,
    {{ loose_key('name_key') }} as loose_key
from (select *, {{ name_key('name') }} as name_key from spellings where name is not null)
