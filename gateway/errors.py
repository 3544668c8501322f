"""The gateway's error hierarchy, rendered in one place as the OpenAI error body.

ApexError                        500 api_error
├── InvalidRequestError          400 invalid_request_error   (bad JSON, missing/invalid fields)
│   └── PayloadTooLargeError     413 invalid_request_error
├── AuthenticationError          401 authentication_error    (missing, unknown or revoked key)
├── PermissionDeniedError        403 permission_error
├── NotFoundError                404 invalid_request_error   (unknown model or route)
├── RateLimitError               429 rate_limit_error        (a limit that resets: carries Retry-After)
│   └── QuotaExceededError       429 insufficient_quota      (a budget that never resets: no Retry-After)
└── UpstreamError                502 upstream_error          (the provider failed or answered badly)
    ├── UpstreamRateLimitError   429 rate_limit_error        (provider said 429; Retry-After passed on)
    ├── UpstreamBadRequestError  400 invalid_request_error   (provider rejected the request body)
    └── UpstreamTimeoutError     504 timeout_error

``retry_after`` becomes the ``Retry-After`` header (whole seconds, at least 1); ``should_retry=False`` becomes
``x-should-retry: false``, which the OpenAI and Anthropic SDKs obey instead of retrying a 429 that cannot succeed.
"""

from __future__ import annotations

import orjson
from starlette.responses import Response

__all__ = [
    "JSON",
    "ApexError",
    "AuthenticationError",
    "InvalidRequestError",
    "NotFoundError",
    "PayloadTooLargeError",
    "PermissionDeniedError",
    "QuotaExceededError",
    "RateLimitError",
    "UpstreamBadRequestError",
    "UpstreamError",
    "UpstreamRateLimitError",
    "UpstreamTimeoutError",
    "error_response",
    "model_not_found",
]

JSON = "application/json"


class ApexError(Exception):
    status = 500
    type = "api_error"

    def __init__(
        self,
        message: str,
        *,
        param: str | None = None,
        code: str | None = None,
        retry_after: float | None = None,
        should_retry: bool | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.param = param
        self.code = code
        self.retry_after = retry_after
        self.should_retry = should_retry

    def body(self) -> bytes:
        return orjson.dumps(
            {"error": {"message": self.message, "type": self.type, "param": self.param, "code": self.code}}
        )

    def headers(self) -> dict[str, str]:
        headers = {}
        if self.retry_after is not None:
            headers["retry-after"] = str(max(1, int(self.retry_after + 0.999)))
        if self.should_retry is not None:
            headers["x-should-retry"] = "true" if self.should_retry else "false"
        return headers


class InvalidRequestError(ApexError):
    status = 400
    type = "invalid_request_error"


class PayloadTooLargeError(InvalidRequestError):
    status = 413


class AuthenticationError(ApexError):
    status = 401
    type = "authentication_error"


class PermissionDeniedError(ApexError):
    status = 403
    type = "permission_error"


class NotFoundError(ApexError):
    status = 404
    type = "invalid_request_error"


def model_not_found(model: str) -> NotFoundError:
    """What every endpoint answers for a model name that no route serves."""
    return NotFoundError(
        f"The model '{model}' does not exist or is not configured in Apex (see GET /v1/models).",
        param="model",
        code="model_not_found",
    )


class RateLimitError(ApexError):
    status = 429
    type = "rate_limit_error"


class QuotaExceededError(RateLimitError):
    """OpenAI's answer when the account's quota is spent: only raising the budget helps, waiting does not."""

    type = "insufficient_quota"


class UpstreamError(ApexError):
    status = 502
    type = "upstream_error"


class UpstreamRateLimitError(UpstreamError):
    status = 429
    type = "rate_limit_error"


class UpstreamBadRequestError(UpstreamError):
    status = 400
    type = "invalid_request_error"


class UpstreamTimeoutError(UpstreamError):
    status = 504
    type = "timeout_error"


def error_response(err: ApexError, request_id: str) -> Response:
    """The error as the OpenAI-shaped response every non-Anthropic endpoint sends."""
    headers = {"x-request-id": request_id, **err.headers()}
    return Response(err.body(), status_code=err.status, media_type=JSON, headers=headers)
