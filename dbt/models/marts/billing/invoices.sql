-- One invoice per customer x billing period (UTC month) that has at least one line.
-- total_cents sums the billable lines only; a blocked line holds the whole invoice back ('blocked'),
-- and a customer without a Stripe mapping gets 'no_stripe_mapping' (built, never pushed).

with

lines as (

    select * from {{ ref('invoice_lines') }}

),

contracts as (

    select * from {{ ref('customer_contracts') }}

),

per_invoice as (

    select
        invoice_id,
        customer_id,
        billing_period,
        cast(coalesce(sum(amount_cents) filter (where status = 'billable'), 0) as bigint) as total_cents,
        cast(count(*) as integer) as line_count,
        count(*) filter (where status = 'blocked_unknown_price') as blocked_lines
    from lines
    group by 1, 2, 3

),

final as (

    select
        per_invoice.invoice_id,
        per_invoice.customer_id,
        per_invoice.billing_period,
        cast(strptime(per_invoice.billing_period || '-01', '%Y-%m-%d') as date) as period_start,
        last_day(cast(strptime(per_invoice.billing_period || '-01', '%Y-%m-%d') as date)) as period_end,
        coalesce(contracts.currency, 'usd') as currency,
        per_invoice.total_cents,
        per_invoice.line_count,
        contracts.stripe_customer_id,
        coalesce(contracts.days_until_due, {{ var('default_days_until_due') }}) as days_until_due,
        case
            when per_invoice.blocked_lines > 0 then 'blocked'
            when contracts.stripe_customer_id is null then 'no_stripe_mapping'
            else 'ready'
        end as status
    from per_invoice
    left join contracts on per_invoice.customer_id = contracts.customer_id

)

select * from final
