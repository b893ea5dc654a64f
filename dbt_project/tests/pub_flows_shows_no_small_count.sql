{# pub_flows is built on DuckDB only (a Python model), and so is its test. #}
{{ config(enabled=target.type != 'spark') }}

-- DATA_STANDARD.md §7: no published count from 1 to the country's threshold - 1, and no count beside a Q.
with thresholds as (
    select * from {{ ref('publication_thresholds') }}
)

select pub.*
from {{ ref('pub_flows') }} as pub
left join thresholds using (reporting_country)
where (pub.count >= 1 and pub.count < coalesce(thresholds.threshold, 5))
   or (pub.obs_status = 'Q' and pub.count is not null)
