-- Every invoice line Apex can bill: VBP lines (customer x period x lever) and BVM lines (one per validation
-- run). The export/Stripe side codes against this table's contract (invoice_lines.yml).

with

vbp as (

    select * from {{ ref('fct_vbp_invoice_lines') }}

),

bvm as (

    select * from {{ ref('fct_bvm_charges') }}

),

contracts as (

    select * from {{ ref('customer_contracts') }}

),

vbp_lines as (

    select
        line_id,
        invoice_id,
        customer_id,
        billing_period,
        'vbp' as line_type,
        lever,
        'Value-based fee: ' || printf('%.2f', fee_rate * 100) || '% of ' || printf('%.2f', verified_savings_usd)
        || ' USD verified ' || lever || ' savings over ' || event_count || ' requests' as description,
        amount_cents,
        currency,
        verified_savings_usd,
        fee_rate,
        cast(null as double) as base_cost_usd,
        status,
        status_reason,
        event_count,
        proof_hash
    from vbp

),

bvm_lines as (

    select
        bvm.charge_id as line_id,
        {{ hash_id(["'inv'", 'bvm.customer_id', 'bvm.billing_period']) }} as invoice_id,
        bvm.customer_id,
        bvm.billing_period,
        'bvm' as line_type,
        cast(null as varchar) as lever,
        'Validation run ' || bvm.run_id || ' (' || coalesce(bvm.validated, '?') || ', ' || bvm.outcome || ') on '
        || coalesce(bvm.instance_type, '?') || ': ' || bvm.duration_seconds || ' s'
        || coalesce(' at ' || printf('%.4f', bvm.hourly_usd) || ' USD/h', '') || ' + '
        || printf('%.0f', bvm.markup_rate * 100) || '%' as description,
        bvm.charge_cents as amount_cents,
        coalesce(contracts.currency, 'usd') as currency,
        cast(null as double) as verified_savings_usd,
        cast(null as double) as fee_rate,
        bvm.base_cost_usd,
        bvm.status,
        bvm.status_reason,
        cast(1 as bigint) as event_count,
        sha256(bvm.run_id) as proof_hash
    from bvm
    left join contracts on bvm.customer_id = contracts.customer_id

),

final as (

    select * from vbp_lines
    union all
    select * from bvm_lines

)

select * from final
