"""Azure OpenAI: the OpenAI wire format, addressed by deployment and ``api-version``, authenticated by ``api-key``.

The route's upstream model is the deployment name.
"""

from __future__ import annotations

from urllib.parse import quote

from contracts.settings import ProviderSettings
from gateway.providers import provider_secret, register_kind
from gateway.upstream import Transport
from gateway.wire.openai.provider import OpenAICompatibleProvider

__all__ = ["AzureOpenAIProvider"]


class AzureOpenAIProvider(OpenAICompatibleProvider):
    def __init__(
        self,
        name: str,
        base_url: str,
        api_key: str | None,
        api_version: str,
        transport: Transport,
        *,
        timeout_s: float = 600.0,
        connect_timeout_s: float = 10.0,
    ) -> None:
        self._api_version = api_version
        super().__init__(
            name, "azure", base_url, api_key, transport, timeout_s=timeout_s, connect_timeout_s=connect_timeout_s
        )

    def _url(self, endpoint: str, model: str) -> str:
        deployment = quote(model, safe="")
        return f"{self._base_url}/openai/deployments/{deployment}/{endpoint}?api-version={quote(self._api_version)}"

    def _auth_headers(self, api_key: str | None) -> dict[str, str]:
        return {"api-key": api_key} if api_key else {}


def _azure(p: ProviderSettings, transport: Transport) -> AzureOpenAIProvider:
    assert p.base_url is not None and p.api_version is not None
    timeouts = {"timeout_s": p.timeout_s, "connect_timeout_s": p.connect_timeout_s}
    return AzureOpenAIProvider(p.name, p.base_url, provider_secret(p), p.api_version, transport, **timeouts)


register_kind("azure", _azure, requires=("base_url", "api_version"))
