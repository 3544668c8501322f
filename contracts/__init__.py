"""The contracts between Apex's parts, in one place that imports nothing else of Apex.

| module                        | contract                                               | written → read by       |
|-------------------------------|--------------------------------------------------------|-------------------------|
| ``contracts.events``          | the event schema (one Parquet row per gateway call)    | gateway → analytics     |
| ``contracts.event_files``     | where event files live (``date=/hour=`` folders)       | gateway → analytics     |
| ``contracts.validation_runs`` | the validation-run schema and writer (BVM metering)    | sandbox → analytics     |
| ``contracts.policies``        | policy files (envelope, atomic write)                  | optimizer assets → gw   |
| ``contracts.pricing``         | cost per call from litellm's price table               | gateway, billing, opt.  |
| ``contracts.tokens``          | token counting (tiktoken, offline)                     | gateway, optimizers     |
| ``contracts.ids``             | event and request ids                                  | gateway, sandbox        |
| ``contracts.settings``        | ``apex.yaml`` + ``APEX_*``, split by owning process    | every process           |
| ``contracts.console``         | the ``apex`` command packages register commands on     | every package           |

Every other package may import these; these import no other package of Apex (``make lint`` checks it).
"""
