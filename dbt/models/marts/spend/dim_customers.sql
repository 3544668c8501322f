-- One row per customer Apex knows of: every customer with a contract (seed customer_contracts), gateway traffic
-- or a validation run, with the contract terms billing applies (the defaults where there is no contract row).

with

contracts as (

    select * from {{ ref('customer_contracts') }}

),

requests as (

    select
        customer_id,
        min(ts_start) as first_request_at,
        max(ts_start) as last_request_at
    from {{ ref('stg_gateway__requests') }}
    where customer_id is not null
    group by 1

),

runs as (

    select
        customer_id,
        min(started_at) as first_validation_run_at
    from {{ ref('stg_sandbox__validation_runs') }}
    group by 1

),

customers as (

    select customer_id from contracts
    union
    select customer_id from requests
    union
    select customer_id from runs

),

final as (

    select
        customers.customer_id,
        contracts.customer_id is not null as has_contract,
        coalesce(contracts.fee_rate, {{ var('vbp_default_fee_rate') }}) as fee_rate,
        contracts.stripe_customer_id,
        coalesce(contracts.currency, 'usd') as currency,
        coalesce(contracts.days_until_due, {{ var('default_days_until_due') }}) as days_until_due,
        contracts.contract_start,
        requests.first_request_at,
        requests.last_request_at,
        runs.first_validation_run_at
    from customers
    left join contracts on customers.customer_id = contracts.customer_id
    left join requests on customers.customer_id = requests.customer_id
    left join runs on customers.customer_id = runs.customer_id

)

select * from final
