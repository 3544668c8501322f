-- Compression per customer and UTC day, by outcome (compressed, unchanged, fallback: the guard sent the
-- original) and, for fallbacks, the kind of reason: the dashboard's compression section. Calls without a
-- compression_status did not opt in and are left out. A fallback reason is grouped by kind ('number lost',
-- 'final question lost', 'quality < 0.9', 'error'...): the lost item itself is prompt content and is dropped.

with

spend as (

    select * from {{ ref('fct_llm_spend') }}

),

opted_in as (

    select
        event_date as day,
        customer_id,
        case
            when compression_status like 'fallback%' then 'fallback' else compression_status
        end as compression_outcome,
        trim(regexp_replace(compression_status, '^fallback:?', '')) as fallback_detail,
        compression_tokens_saved,
        savings_compression_usd
    from spend
    where compression_status is not null

),

classified as (

    select
        *,
        case
            when compression_outcome <> 'fallback' then null
            when fallback_detail = '' then '(no reason given)'
            when fallback_detail like 'quality %'
                then regexp_replace(fallback_detail, '^quality [^<]*< *([^:]*).*$', 'quality < \1')
            else trim(split_part(fallback_detail, ':', 1))
        end as fallback_reason
    from opted_in

),

final as (

    select
        day,
        customer_id,
        compression_outcome,
        fallback_reason,
        count(*) as requests,
        cast(coalesce(sum(compression_tokens_saved), 0) as bigint) as tokens_saved,
        coalesce(sum(savings_compression_usd), 0) as savings_usd
    from classified
    group by 1, 2, 3, 4

)

select * from final
