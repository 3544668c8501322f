"""A local fake of the Stripe API's invoicing endpoints, for tests (the network edge only; no stripe-mock exists).

It speaks enough of the real wire format for the official ``stripe`` SDK: form-encoded POST bodies with
bracketed nesting (``metadata[line_id]=...``), JSON objects with ``id``/``object``, Stripe's error body
``{"error": {"type", "code", "message", "param"}}`` and its ``Idempotency-Key`` semantics:

    POST /v1/customers                     create a customer (tests usually call ``add_customer`` instead)
    GET  /v1/customers/{id}                404 ``resource_missing`` for an unknown id
    POST /v1/invoices                      a draft invoice; ``customer`` must exist, ``send_invoice`` needs
                                           ``days_until_due``
    GET  /v1/invoices/{id}                 the invoice with its ``lines``
    POST /v1/invoices/{id}/finalize        draft → open (a second finalize is a 400, like Stripe's)
    POST /v1/invoiceitems                  an item; with ``invoice=`` it lands on that draft (400 if not a draft)

Idempotency: the same key on the same method + path with the same parameters replays the first response and
creates nothing; the same key with different parameters is a 400 ``idempotency_error``. Every request is kept
in ``FakeStripe.requests`` (method, path, params, idempotency key). ``fail_request(n)`` makes the n-th request
from now answer 500 *before* doing anything (as if the server crashed before committing; nothing is stored
under its idempotency key), to simulate a push that dies halfway.

Run standalone: ``python -m sandbox.fake_stripe --port 12111``.
"""

from __future__ import annotations

import argparse
import itertools
import threading
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl

import orjson
from aiohttp import web

from sandbox.loopback import LoopbackServer

__all__ = ["FakeStripe", "RecordedRequest"]


@dataclass(frozen=True)
class RecordedRequest:
    method: str
    path: str
    params: dict[str, Any]
    idempotency_key: str | None
    status: int


def _nest(pairs: list[tuple[str, str]]) -> dict[str, Any]:
    """``a[b]=1`` → ``{"a": {"b": "1"}}``; repeated ``a[]`` become lists (Stripe's form encoding)."""
    out: dict[str, Any] = {}
    for key, value in pairs:
        parts = key.replace("]", "").split("[")
        node = out
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        leaf = parts[-1]
        if leaf == "":
            node.setdefault("__list__", []).append(value)
        else:
            node[leaf] = value
    return out


def _error(status: int, message: str, *, code: str | None = None, param: str | None = None, kind: str = "") -> Any:
    body = {"error": {"type": kind or "invalid_request_error", "code": code, "message": message, "param": param}}
    return web.json_response(body, status=status, dumps=lambda o: orjson.dumps(o).decode())


def _ok(obj: dict[str, Any]) -> web.Response:
    return web.json_response(obj, dumps=lambda o: orjson.dumps(o).decode())


def _bool(value: Any, default: bool) -> bool:
    return default if value is None else str(value).lower() == "true"


class FakeStripe(LoopbackServer):
    def __init__(self) -> None:
        self.requests: list[RecordedRequest] = []
        self.customers: dict[str, dict[str, Any]] = {}
        self.invoices: dict[str, dict[str, Any]] = {}
        self.invoice_items: dict[str, dict[str, Any]] = {}
        self._idempotent: dict[tuple[str, str, str], tuple[dict[str, Any], int, bytes]] = {}
        self._fail_at: set[int] = set()
        self._seen = 0
        self._ids = itertools.count(1)
        self._lock = threading.Lock()

    # -- test controls -------------------------------------------------------------------------------------

    def reset(self) -> None:
        with self._lock:
            self.requests.clear()
            self.customers.clear()
            self.invoices.clear()
            self.invoice_items.clear()
            self._idempotent.clear()
            self._fail_at.clear()
            self._seen = 0

    def add_customer(self, customer_id: str, name: str = "") -> None:
        self.customers[customer_id] = {"id": customer_id, "object": "customer", "name": name or customer_id}

    def fail_request(self, n: int) -> None:
        """Answer the ``n``-th request from now (1 = the next one) with a 500, without processing it."""
        self._fail_at.add(self._seen + n)

    def posts(self, path_prefix: str = "/v1/") -> list[RecordedRequest]:
        return [r for r in self.requests if r.method == "POST" and r.path.startswith(path_prefix)]

    # -- the app --------------------------------------------------------------------------------------------

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._handle)
        return app

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        if not request.headers.get("Authorization", "").startswith("Bearer "):
            return _error(401, "You did not provide an API key.", kind="invalid_request_error")
        raw = await request.text() if request.method == "POST" else request.query_string
        params = _nest(parse_qsl(raw, keep_blank_values=True))
        key = request.headers.get("Idempotency-Key") if request.method == "POST" else None
        with self._lock:
            self._seen += 1
            if self._seen in self._fail_at:
                self._record(request, params, key, 500)
                resp = _error(500, "Simulated server failure (fake_stripe).", kind="api_error")
                resp.headers["Stripe-Should-Retry"] = "false"
                return resp
            if key is not None:
                stored = self._idempotent.get((request.method, request.path, key))
                if stored is not None:
                    first_params, status, body = stored
                    if first_params != params:
                        self._record(request, params, key, 400)
                        return _error(
                            400,
                            f"Keys for idempotent requests can only be used with the same parameters they were "
                            f"first used with. Try using a key other than '{key}' if you meant to execute a "
                            "different request.",
                            kind="idempotency_error",
                        )
                    self._record(request, params, key, status)
                    resp = web.Response(body=body, status=status, content_type="application/json")
                    resp.headers["Idempotent-Replayed"] = "true"
                    return resp
            resp = self._route(request.method, request.path, params)
            self._record(request, params, key, resp.status)
            if key is not None and resp.status < 500:
                assert isinstance(resp.body, bytes)
                self._idempotent[(request.method, request.path, key)] = (params, resp.status, resp.body)
            return resp

    def _record(self, request: web.Request, params: dict[str, Any], key: str | None, status: int) -> None:
        self.requests.append(RecordedRequest(request.method, request.path, params, key, status))

    def _route(self, method: str, path: str, params: dict[str, Any]) -> web.Response:
        parts = path.strip("/").split("/")
        if parts[:1] != ["v1"]:
            return _error(404, f"Unrecognized request URL ({method}: {path}).")
        match method, parts[1:]:
            case "POST", ["customers"]:
                cid = f"cus_{next(self._ids):06d}"
                self.customers[cid] = {"id": cid, "object": "customer", "name": params.get("name", "")}
                return _ok(self.customers[cid])
            case "GET", ["customers", cid]:
                if cid not in self.customers:
                    return _error(404, f"No such customer: '{cid}'", code="resource_missing", param="id")
                return _ok(self.customers[cid])
            case "POST", ["invoices"]:
                return self._create_invoice(params)
            case "GET", ["invoices", iid]:
                if iid not in self.invoices:
                    return _error(404, f"No such invoice: '{iid}'", code="resource_missing", param="id")
                return _ok(self._invoice_view(iid))
            case "POST", ["invoices", iid, "finalize"]:
                return self._finalize(iid)
            case "POST", ["invoiceitems"]:
                return self._create_item(params)
        return _error(404, f"Unrecognized request URL ({method}: {path}).")

    def _create_invoice(self, params: dict[str, Any]) -> web.Response:
        customer = params.get("customer")
        if not customer:
            return _error(400, "Missing required param: customer.", code="parameter_missing", param="customer")
        if customer not in self.customers:
            return _error(400, f"No such customer: '{customer}'", code="resource_missing", param="customer")
        method = params.get("collection_method", "charge_automatically")
        if method == "send_invoice" and "days_until_due" not in params:
            return _error(
                400,
                "Missing required param: days_until_due when collection_method is send_invoice.",
                code="parameter_missing",
                param="days_until_due",
            )
        iid = f"in_fake{next(self._ids):06d}"
        self.invoices[iid] = {
            "id": iid,
            "object": "invoice",
            "customer": customer,
            "status": "draft",
            "collection_method": method,
            "days_until_due": int(params["days_until_due"]) if "days_until_due" in params else None,
            "auto_advance": _bool(params.get("auto_advance"), default=False),
            "currency": params.get("currency", "usd"),
            "description": params.get("description"),
            "metadata": params.get("metadata", {}),
            "number": None,
            "created": int(time.time()),
        }
        return _ok(self._invoice_view(iid))

    def _invoice_view(self, iid: str) -> dict[str, Any]:
        items = [i for i in self.invoice_items.values() if i["invoice"] == iid]
        total = sum(i["amount"] for i in items)
        lines = [
            {
                "id": f"il_{i['id']}",
                "object": "line_item",
                "amount": i["amount"],
                "currency": i["currency"],
                "description": i["description"],
                "metadata": i["metadata"],
            }
            for i in items
        ]
        return {
            **self.invoices[iid],
            "amount_due": total,
            "subtotal": total,
            "total": total,
            "lines": {"object": "list", "data": lines, "has_more": False, "url": f"/v1/invoices/{iid}/lines"},
        }

    def _finalize(self, iid: str) -> web.Response:
        invoice = self.invoices.get(iid)
        if invoice is None:
            return _error(404, f"No such invoice: '{iid}'", code="resource_missing", param="invoice")
        if invoice["status"] != "draft":
            return _error(400, "This invoice is already finalized.", code="invoice_not_editable")
        invoice["status"] = "open"
        invoice["number"] = f"FAKE-{len([i for i in self.invoices.values() if i['number']]) + 1:04d}"
        return _ok(self._invoice_view(iid))

    def _create_item(self, params: dict[str, Any]) -> web.Response:
        customer = params.get("customer")
        if not customer or customer not in self.customers:
            return _error(400, f"No such customer: '{customer}'", code="resource_missing", param="customer")
        try:
            amount = int(params["amount"])
        except (KeyError, ValueError):
            return _error(400, "Invalid integer: amount", code="parameter_invalid_integer", param="amount")
        iid = params.get("invoice")
        if iid is not None:
            invoice = self.invoices.get(iid)
            if invoice is None:
                return _error(400, f"No such invoice: '{iid}'", code="resource_missing", param="invoice")
            if invoice["status"] != "draft":
                return _error(400, "You can only add invoice items to draft invoices.", code="invoice_not_editable")
        item_id = f"ii_fake{next(self._ids):06d}"
        self.invoice_items[item_id] = {
            "id": item_id,
            "object": "invoiceitem",
            "amount": amount,
            "currency": params.get("currency", "usd"),
            "customer": customer,
            "invoice": iid,
            "description": params.get("description"),
            "metadata": params.get("metadata", {}),
        }
        return _ok(self.invoice_items[item_id])

    # -- running it in a background thread (tests) ----------------------------------------------------------

    @property
    def base_url(self) -> str:
        """What to give the SDK as its ``api`` base address (no ``/v1``: the SDK adds it)."""
        return f"http://127.0.0.1:{self.port}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=12111)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--customer", action="append", default=[], help="Stripe customer id to pre-create.")
    args = parser.parse_args()
    fake = FakeStripe()
    for cid in args.customer:
        fake.add_customer(cid)
    web.run_app(fake.app(), host=args.host, port=args.port, access_log=None, print=lambda *_: None)


if __name__ == "__main__":
    main()
