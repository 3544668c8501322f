-- The proof behind each invoice line: every verified savings event of a VBP line (source_kind 'event') and the
-- validation run of a BVM line (source_kind 'validation_run'). invoice_lines.proof_hash is sha256 of the
-- line's sorted source_ids joined by ','.

with

lines as (

    select * from {{ ref('fct_vbp_invoice_lines') }}

),

verified as (

    select * from {{ ref('int_billable_savings') }}

),

runs as (

    select * from {{ ref('fct_bvm_charges') }}

),

final as (

    select
        lines.line_id,
        'event' as source_kind,
        verified.event_id as source_id,
        verified.lever,
        verified.savings_usd
    from verified
    inner join lines
        on verified.customer_id = lines.customer_id
        and verified.billing_period = lines.billing_period
        and verified.lever = lines.lever

    union all

    select
        charge_id as line_id,
        'validation_run' as source_kind,
        run_id as source_id,
        cast(null as varchar) as lever,
        cast(null as double) as savings_usd
    from runs

)

select * from final
