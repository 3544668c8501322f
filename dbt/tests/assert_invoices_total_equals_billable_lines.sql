-- Each invoice's total is exactly the sum of its billable lines, and every line belongs to an invoice.
{{ config(meta={'dagster': {'ref': {'name': 'invoices'}}}) }}

with

line_totals as (

    select
        invoice_id,
        coalesce(sum(amount_cents) filter (where status = 'billable'), 0) as billable_cents,
        count(*) as line_count
    from {{ ref('invoice_lines') }}
    group by 1

)

select
    coalesce(invoices.invoice_id, line_totals.invoice_id) as invoice_id,
    invoices.total_cents,
    line_totals.billable_cents,
    invoices.line_count,
    line_totals.line_count as lines_found
from {{ ref('invoices') }} as invoices
full outer join line_totals on invoices.invoice_id = line_totals.invoice_id
where invoices.invoice_id is null
    or line_totals.invoice_id is null
    or invoices.total_cents <> line_totals.billable_cents
    or invoices.line_count <> line_totals.line_count
