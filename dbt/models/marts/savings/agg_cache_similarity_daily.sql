-- Histogram of the semantic cache's similarity for semantic hits and shadow hits, per customer and UTC day:
-- the dashboard's similarity chart. Bins are 0.01 wide (dashboards.queries.SIMILARITY_BIN); 1.0 falls in the
-- last bin.

with

spend as (

    select * from {{ ref('fct_llm_spend') }}

),

final as (

    select
        event_date as day,
        customer_id,
        cache_status,
        -- round() first so e.g. 0.57 (56.99999... x 100 in binary) lands in its own bin, not the one below
        least(greatest(floor(round(cache_similarity * 100, 6)), 0), 99)::integer / 100.0 as bin_start,
        count(*) as requests
    from spend
    where cache_status in ('hit_semantic', 'shadow_hit') and cache_similarity is not null
    group by 1, 2, 3, 4

)

select * from final
