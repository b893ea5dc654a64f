{#-
  The warehouse's tables that no model builds: the raw layer ingest writes,
  the validation schema the suites and the audit write, and the pipeline's
  own bookkeeping. Each schema has one writer (docs/architecture.md). Created at the start of every dbt
  invocation (on-run-start), so `dbt build` works on an empty warehouse, and
  by hmo/warehouse.py when it opens one, from this same text: the body is
  plain SQL, no Jinja, and stays so (tests/ingest/test_warehouse.py).

  The schema version below changes whenever a table or column changes
  meaning or shape: a warehouse of another version is rebuilt from the
  archive (`hmo rebuild`), never patched in place.
-#}
{% macro create_raw_layer() -%}
create schema if not exists raw;
create sequence if not exists raw.submission_id_seq start 1;
create table if not exists raw.submissions (
    submission_id integer primary key,
    reporting_country varchar not null,   -- the inbox folder
    file_name varchar not null,
    archive_path varchar not null,
    sha256 varchar not null,
    size_bytes bigint not null,
    encoding varchar,
    delimiter varchar,
    profile varchar,
    source_columns varchar[],             -- header as written
    column_names varchar,                 -- JSON: standard column -> header(s) read, null if the profile fixes it
    missing_columns varchar[],            -- "standard column=source column" the file lacks
    duplicate_columns varchar[],          -- headers that name one standard column twice
    read_error varchar,                   -- why the file could not be read as a table
    data_rows bigint,
    notes varchar[],
    sum_duplicates boolean not null default false,  -- the profile sums rows of one standard key
    received_at timestamptz not null,
    load_state varchar not null           -- loading (rows being written) | received (loaded, whole)
);
create table if not exists raw.observations (
    submission_id integer not null,
    source_row bigint not null,           -- row as a spreadsheet shows it (header = 1)
    reporting_country varchar,
    period varchar,
    flow_type varchar,
    border_point varchar,
    counterpart_country varchar,
    sex varchar,
    age varchar,
    nationality varchar,
    count varchar,
    obs_status varchar
);
-- what can be checked only while the file is read (a profile's month-total lines, which are not rows)
create table if not exists raw.load_failures (
    submission_id integer not null,
    rule_id varchar not null,
    severity varchar not null,            -- error | warning
    source_row bigint,
    column_name varchar,
    value varchar,
    detail varchar
);
-- the verdicts, appended: a submission's verdict is its latest (validation, then the audit)
create schema if not exists validation;
create sequence if not exists validation.verdict_id_seq start 1;
create table if not exists validation.verdicts (
    verdict_id integer primary key default nextval('validation.verdict_id_seq'),
    submission_id integer not null,
    status varchar not null,              -- accepted | rejected
    decided_by varchar not null,          -- suites | audit | rebuild (a verdict once answered stands)
    decided_at timestamptz not null default current_timestamp
);
create table if not exists validation.rule_failures (
    submission_id integer not null,
    rule_id varchar not null,
    severity varchar not null,            -- error | warning
    source_row bigint,
    column_name varchar,
    value varchar,
    detail varchar
);
-- a file whose bytes were already received from the same country: answered, not loaded again
create sequence if not exists raw.duplicate_id_seq start 1;
create table if not exists raw.duplicates (
    duplicate_id integer primary key,
    submission_id integer not null,       -- the submission with the same bytes
    reporting_country varchar not null,
    file_name varchar not null,
    received_at timestamptz not null
);
-- what lies in the inbox that the Observatory will not read, and why (refreshed each ingest)
create table if not exists raw.refused_files (
    path varchar primary key,             -- relative to the inbox
    reason varchar not null,
    first_seen timestamptz not null,
    last_seen timestamptz not null
);
-- each reporting country's own spellings of country names (ingest/aliases.py; refreshed each ingest)
create table if not exists raw.national_aliases (
    reporting_country varchar not null,
    name varchar not null,                -- as the country writes it
    code varchar not null,
    source varchar not null,              -- why: the agency's export, a statistician's request
    added_by varchar,
    added_at varchar,
    alias_file varchar not null           -- where the line is kept
);
-- which version of the dbt project (harmonise.dbt.project_fingerprint) built each step
create table if not exists main.hmo_build_state (step varchar, fingerprint varchar);
-- submissions up to this id passed the audit build: their verdicts are final
create table if not exists main.hmo_audit (audited_through integer not null, audited_at timestamptz not null);
create table if not exists main.hmo_schema (version integer not null);
insert into main.hmo_schema select 4 where not exists (select 1 from main.hmo_schema);
{%- endmacro %}
