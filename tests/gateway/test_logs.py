"""Process logs are JSON lines with secrets masked."""

from __future__ import annotations

import json
import logging

from gateway.logs import JsonFormatter, scrub


def test_scrub_masks_keys_and_bearer_tokens():
    text = (
        "upstream said: Incorrect API key sk-proj-abcdef1234567890XYZ; header Authorization: Bearer sk-apex-Zz9_secret"
    )
    out = scrub(text)
    assert "abcdef1234567890XYZ" not in out and "Zz9_secret" not in out
    assert "sk-proj-a***" in out and "Bearer ***" in out  # a short prefix stays, to tell keys apart
    assert scrub("AIzaSyA1234567890abcdefgh") == "AIza***"


def test_json_formatter_writes_one_scrubbed_object_per_record():
    record = logging.LogRecord(
        "apex.gateway", logging.ERROR, __file__, 1, "key %s failed", ("sk-apex-1234567890abcd",), None
    )
    line = json.loads(JsonFormatter().format(record))
    assert line["level"] == "error" and line["logger"] == "apex.gateway"
    assert "1234567890abcd" not in line["msg"] and line["msg"].startswith("key sk-apex-")
