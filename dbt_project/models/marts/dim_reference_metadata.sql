{#
  Reference metadata (definitions, units, coverage, breaks in series) in English
  and Spanish, per flow type and reporting country; `_T` in either means every
  one. `hmo export` writes the entries that concern the exported rows beside the
  data (flows/metadata.py).
#}
with entries as (
    select * from {{ ref('reference_metadata') }}
),

concepts as (
    select * from {{ ref('cl_metadata_concept') }}
)

select
    entries.reporting_country,
    entries.flow_type,
    entries.concept,
    concepts.label_en as concept_label_en,
    concepts.label_es as concept_label_es,
    entries.valid_from,
    entries.valid_to,
    entries.text_en,
    entries.text_es
from entries
inner join concepts on concepts.code = entries.concept
