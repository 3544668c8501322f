{#-
  Hour watermark for the request-grain incremental models.

  On an incremental run a model re-processes every hour from the newest hour it already holds (inclusive: that
  hour may have been partial) minus var('apex_lookback_hours', 0) hours. var('apex_reprocess_from') (a UTC
  timestamp string, taken from the start of its hour) overrides it, e.g. after late files for an older hour;
  `--full-refresh` rebuilds all.
  The watermark is rendered as a literal so DuckDB can push it into the Parquet scan and skip row groups.
  Returns none on a full build (no filter).
-#}
{% macro hour_watermark(column) -%}
    {%- if not execute or this is none or not is_incremental() -%}
        {{ return(none) }}
    {%- endif -%}
    {%- set override = var('apex_reprocess_from', none) -%}
    {%- if override -%}
        {#- whole hours: the hour-keyed models replace whole hours, so a mid-hour start would drop its first part -#}
        {%- set sql -%}
            select strftime(date_trunc('hour', cast('{{ override }}' as timestamp)), '%Y-%m-%d %H:%M:%S')
        {%- endset -%}
        {{ return(run_query(sql).columns[0].values()[0]) }}
    {%- endif -%}
    {%- set lookback = var('apex_lookback_hours', 0) | int -%}
    {%- set sql -%}
        select strftime(date_trunc('hour', max({{ column }})) - interval {{ lookback }} hour, '%Y-%m-%d %H:%M:%S')
        from {{ this }}
    {%- endset -%}
    {%- set value = run_query(sql).columns[0].values()[0] -%}
    {{ return(value) }}
{%- endmacro %}

{#-
  Upper end of an incremental run's window: var('apex_reprocess_to') (a UTC timestamp string, taken from the start of
  its hour), exclusive. A Dagster run for day D passes D+1 00:00 with apex_reprocess_from = D 00:00, so it loads and
  replaces only that day's hours: later days wait for their own run (and their own blocking checks). None (the
  default, and on full builds): no upper bound.
-#}
{% macro hour_ceiling() -%}
    {%- if not execute or this is none or not is_incremental() -%}
        {{ return(none) }}
    {%- endif -%}
    {%- set ceiling = var('apex_reprocess_to', none) -%}
    {%- if not ceiling -%}
        {{ return(none) }}
    {%- endif -%}
    {%- set sql -%}
        select strftime(date_trunc('hour', cast('{{ ceiling }}' as timestamp)), '%Y-%m-%d %H:%M:%S')
    {%- endset -%}
    {{ return(run_query(sql).columns[0].values()[0]) }}
{%- endmacro %}

{#-
  The gateway events source narrowed to the files an incremental run needs: the files under the hour folders
  (date=YYYY-MM-DD/hour=HH/, the UTC hour of the events' ts_start) from the hour of `since` on, plus every file
  outside such folders (the zero-row _schema_v*.parquet that keeps union_by_name's columns stable), minus the
  files `loaded_sql` returns (a query with one column, `file`: the files the model already holds), and before
  the hour of `until` when given (hour_ceiling). Without the
  list DuckDB opens the footer of every file ever written on each run. When every file is already loaded the
  unfiltered list is returned (the model must then drop what it already holds). `since` none (a full build), a
  source that is not a read_parquet('<dir>/**/*.parquet', ...) glob, or compile time: the source unchanged.
-#}
{% macro event_files_since(source_relation, since, loaded_sql=none, until=none) -%}
    {%- set rendered = (source_relation | string) | trim -%}
    {%- set parsed = modules.re.match("^read_parquet\('([^']+)/\*\*/\*\.parquet'(.*)\)$", rendered, modules.re.S) -%}
    {%- if not execute or not since or not parsed -%}
        {{ return(rendered) }}
    {%- endif -%}
    {%- set root, options = parsed.group(1), parsed.group(2) -%}
    {%- set sql -%}
        with files as (
            select file, regexp_extract(file, '/date=(\d{4}-\d{2}-\d{2})/hour=(\d{2})/[^/]*$', ['day', 'hour']) as part
            from glob('{{ root }}/**/*.parquet')
        ),

        wanted as (
            select file from files
            where part.day = ''
                or (
                    strptime(part.day || ' ' || part.hour, '%Y-%m-%d %H') >= date_trunc('hour', timestamp '{{ since }}')
                    {%- if until %}
                    and strptime(part.day || ' ' || part.hour, '%Y-%m-%d %H') < timestamp '{{ until }}'
                    {%- endif %}
                )
        )

        select file, {% if loaded_sql %}file in (select file from ({{ loaded_sql }}) where file is not null){% else %}false{% endif %} as loaded
        from wanted
        order by file
    {%- endset -%}
    {%- set listed = run_query(sql) -%}
    {%- set new_files = [] -%}
    {%- set all_files = [] -%}
    {%- for row in listed.rows -%}
        {%- set quoted = "'" ~ (row[0] | replace("'", "''")) ~ "'" -%}
        {%- do all_files.append(quoted) -%}
        {%- if not row[1] -%}
            {%- do new_files.append(quoted) -%}
        {%- endif -%}
    {%- endfor -%}
    {%- if not all_files -%}
        {{ return(rendered) }}
    {%- endif -%}
    {{ return("read_parquet([" ~ (new_files or all_files) | join(", ") ~ "]" ~ options ~ ")") }}
{%- endmacro %}

{#-
  incremental_strategy='pruned_delete_insert': dbt's delete+insert, plus the predicate
  `<prune_column> >= <the lowest prune_column in the batch>` on the delete, so DuckDB reads only the target's row
  groups from that value on (their zone maps) instead of joining the whole unique_key column against the batch.
  It deletes the same rows as delete+insert whenever a target row that shares the unique_key with a batch row also
  shares its prune_column value: event_hour keyed by event_hour (exact), or ts_start keyed by event_id (a replayed
  event keeps its ts_start). Config: prune_column (required).
-#}
{% macro get_incremental_pruned_delete_insert_sql(arg_dict) -%}
    {%- set column = config.require('prune_column') -%}
    {%- set lowest_sql -%}
        select strftime(min({{ column }}), '%Y-%m-%d %H:%M:%S.%f') from {{ arg_dict['temp_relation'] }}
    {%- endset -%}
    {%- set lowest = run_query(lowest_sql).columns[0].values()[0] -%}
    {%- set predicates = (arg_dict['incremental_predicates'] or []) | list -%}
    {%- if lowest is not none -%}
        {%- do predicates.append(column ~ " >= timestamp '" ~ lowest ~ "'") -%}
    {%- endif -%}
    {%- do arg_dict.update({'incremental_predicates': predicates}) -%}
    {{ return(get_incremental_delete_insert_sql(arg_dict)) }}
{%- endmacro %}
