-- The savings Apex bills: verified claims (is_billable) of a known customer. The one place that rule is
-- written; the VBP invoice lines and the proof behind them (invoice_line_events) both read it.

with

claims as (

    select * from {{ ref('int_savings_claims') }}

),

billable as (

    select *
    from claims
    where is_billable and customer_id is not null

)

select * from billable
