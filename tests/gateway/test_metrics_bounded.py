"""``/metrics`` stays small whatever model names clients send, can ask for the master key, and renders off the
event loop (issue 15, finding 2)."""

from __future__ import annotations

import asyncio
import re
import time

import httpx
import pytest

from gateway.metrics import MAX_LABEL_CHARS


def _requests_counted(text: str) -> float:
    return sum(float(m.group(1)) for m in re.finditer(r"^apex_requests_total\{[^}]*\} (\S+)$", text, re.M))


def _wait_for_requests(url: str, n: int) -> str:
    deadline = time.monotonic() + 15
    while True:
        text = httpx.get(url + "/metrics", timeout=30).text
        if _requests_counted(text) >= n or time.monotonic() > deadline:
            return text
        time.sleep(0.1)


def test_client_chosen_model_names_do_not_become_labels(gw):
    headers = {"authorization": f"Bearer {gw.key}"}
    with httpx.Client(base_url=gw.base_url, headers=headers, timeout=30) as client:
        for i in range(20):
            huge = f"{i:03d}-" + "m" * 100_000
            r = client.post("/chat/completions", json={"model": huge, "messages": [{"role": "user", "content": "x"}]})
            assert 400 <= r.status_code < 500
        r = client.post(
            "/chat/completions", json={"model": "not-configured-xyz", "messages": [{"role": "user", "content": "x"}]}
        )
        assert 400 <= r.status_code < 500
        r = client.post(
            "/chat/completions", json={"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "x"}]}
        )
        assert r.status_code == 200
    text = _wait_for_requests(gw.url, 22)
    assert _requests_counted(text) == 22
    assert len(text.encode()) < 100_000  # was 147 MB after twenty 100 KB names
    assert "mmmmmmmmmm" not in text and "not-configured-xyz" not in text
    assert re.search(r'^apex_requests_total\{gen_ai_request_model="other",http_status="404"\} 21\.0$', text, re.M)
    assert 'gen_ai_request_model="gpt-4o-mini"' in text  # configured names stay as they are
    labels = re.findall(r'="([^"]*)"', text)
    assert labels and max(map(len, labels)) <= MAX_LABEL_CHARS


def test_a_scrape_renders_off_the_event_loop(gw):
    """A render that takes a second (a big registry) must not hold up a chat call sent while it runs."""
    metrics = gw.server.config.app.state.apex.metrics
    real_render = metrics.render

    def slow_render() -> bytes:
        time.sleep(1.0)  # blocking, as rendering a large registry is
        return real_render()

    metrics.render = slow_render

    async def run() -> tuple[float, float]:
        headers = {"authorization": f"Bearer {gw.key}"}
        body = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}
        async with httpx.AsyncClient(base_url=gw.url, timeout=30) as client:
            await client.post("/v1/chat/completions", json=body, headers=headers)  # warm

            async def scrape() -> float:
                t0 = time.perf_counter()
                assert (await client.get("/metrics")).status_code == 200
                return time.perf_counter() - t0

            scraping = asyncio.create_task(scrape())
            await asyncio.sleep(0.2)  # the scrape is rendering now
            t0 = time.perf_counter()
            r = await client.post("/v1/chat/completions", json=body, headers=headers)
            chat_s = time.perf_counter() - t0
            assert r.status_code == 200
            return chat_s, await scraping

    chat_s, scrape_s = asyncio.run(run())
    assert scrape_s >= 1.0
    assert chat_s < 0.5  # before: the call waited for the render (~0.8 s)


@pytest.mark.parametrize(
    ("token", "status", "code"),
    [
        (None, 401, "missing_api_key"),
        ("wrong-master-key", 401, "invalid_master_key"),
        ("the-master-key-0123", 200, None),
    ],
    ids=["no-key", "wrong-key", "master-key"],
)
def test_metrics_can_require_the_master_key(make_gateway, monkeypatch, token, status, code):
    monkeypatch.setenv("APEX_MASTER_KEY", "the-master-key-0123")
    gw = make_gateway(metrics_auth="master_key")
    headers = {"authorization": f"Bearer {token}"} if token else {}
    r = httpx.get(gw.url + "/metrics", headers=headers, timeout=10)
    assert r.status_code == status
    if code is None:
        assert "apex_auth_failures_total" in r.text
    else:
        assert r.json()["error"]["code"] == code
        assert r.json()["error"]["type"] == "authentication_error"


def test_metrics_answer_any_scraper_by_default(gw):
    assert httpx.get(gw.url + "/metrics", timeout=10).status_code == 200
