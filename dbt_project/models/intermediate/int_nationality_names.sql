{{ config(materialized='view') }}

with countries as (
    select * from {{ ref('countries') }}
),

extra_codes as (
    select * from {{ ref('cl_nat_extra') }}
),

aliases as (
    select * from {{ ref('nationality_aliases') }}
),

spellings as (
    select iso3 as code, iso3 as spelling from countries
    union all select iso3, name_en from countries
    union all select iso3, name_es from countries
    union all select iso3, name_fr from countries
    union all select code, code from extra_codes
    union all select code, label_en from extra_codes
    union all select code, label_es from extra_codes
    union all select code, label_fr from extra_codes
    union all select code, alias from aliases
)

select distinct
    {{ normalise_name('spelling') }} as normalised_name,
    code
from spellings
where spelling is not null
