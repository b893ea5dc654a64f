with countries as (
    select * from {{ ref('countries') }}
),

extra_codes as (
    select * from {{ ref('cl_nat_extra') }}
)

select iso3 as nationality_code, name_en as label_en, name_es as label_es, region, conference
from countries
union all
select code, label_en, label_es, null, null
from extra_codes
