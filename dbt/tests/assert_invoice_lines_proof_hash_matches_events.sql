-- Each line's proof_hash is sha256 of its sorted source ids joined by ',', its event_count their number, and
-- a VBP line's verified savings the sum of the savings listed as proof.
{{ config(meta={'dagster': {'ref': {'name': 'invoice_lines'}}}) }}

with

proof as (

    select
        line_id,
        sha256(string_agg(source_id, ',' order by source_id)) as proof_hash,
        count(*) as sources,
        sum(savings_usd) as savings_usd
    from {{ ref('invoice_line_events') }}
    group by 1

)

select lines.line_id, lines.proof_hash, proof.proof_hash as recomputed
from {{ ref('invoice_lines') }} as lines
left join proof on lines.line_id = proof.line_id
where proof.line_id is null
    or lines.proof_hash <> proof.proof_hash
    or lines.event_count <> proof.sources
    or (lines.line_type = 'vbp'
        and abs(lines.verified_savings_usd - proof.savings_usd) > 1e-9 * greatest(1, abs(proof.savings_usd)))
