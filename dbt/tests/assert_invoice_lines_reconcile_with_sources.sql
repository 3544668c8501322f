-- Billed VBP lines cover exactly the verified savings of fct_savings (customers known), and BVM lines
-- exactly the validation runs: nothing billed twice, nothing dropped.
{{ config(meta={'dagster': {'ref': {'name': 'invoice_lines'}}}) }}

with

expected as (

    select
        'vbp' as line_type,
        count(distinct event_id || lever) as sources,
        sum(savings_usd) as savings_usd
    from {{ ref('fct_savings') }}
    where is_billable and customer_id is not null
    union all
    select 'bvm', count(*), null from {{ ref('stg_sandbox__validation_runs') }}

),

billed as (

    select line_type, sum(event_count) as sources, sum(verified_savings_usd) as savings_usd
    from {{ ref('invoice_lines') }}
    group by 1

)

select expected.*, billed.sources as billed_sources, billed.savings_usd as billed_savings_usd
from expected
left join billed on expected.line_type = billed.line_type
where coalesce(billed.sources, 0) <> expected.sources
    or abs(coalesce(billed.savings_usd, 0) - coalesce(expected.savings_usd, 0))
    > 1e-9 * greatest(1, abs(coalesce(expected.savings_usd, 0)))
