"""Why billing refuses to go on; the CLI renders these as one red line and a non-zero exit code.

BillingError
├── MartsMissing          the dbt billing tables are not in the warehouse (run ``dbt build`` first)
├── NoInvoicesForPeriod   the period has no invoices
└── BillingChecksFailed   the latest blocking check on the billing marts failed
"""

from __future__ import annotations

__all__ = ["BillingChecksFailed", "BillingError", "MartsMissing", "NoInvoicesForPeriod"]


class BillingError(Exception):
    """Billing cannot proceed; the message says why and what to do."""


class MartsMissing(BillingError):
    pass


class NoInvoicesForPeriod(BillingError):
    pass


class BillingChecksFailed(BillingError):
    pass
