"""Structured (JSON-lines) logs for the gateway process, with secrets scrubbed before they are written.

Nothing on the request path logs per call (the event log is the access log); these are lifecycle lines and
errors. Anything that looks like an API key (``sk-...``, ``Bearer ...``) is masked, so a provider error that
echoes a key, or an exception message carrying a header, cannot leak it into log files.
"""

from __future__ import annotations

import logging
import re
import time

import orjson

__all__ = ["JsonFormatter", "configure_logging", "scrub"]

_SECRET = re.compile(r"(sk-[A-Za-z0-9_\-]{6})[A-Za-z0-9_\-]{4,}|(Bearer\s+)[^\s\"',]+|(AIza)[A-Za-z0-9_\-]{10,}")


def scrub(text: str) -> str:
    def mask(m: re.Match[str]) -> str:
        keep = m.group(1) or m.group(2) or m.group(3) or ""
        return keep + "***"

    return _SECRET.sub(mask, text)


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, object] = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": scrub(record.getMessage()),
        }
        if record.exc_info:
            line["exc"] = scrub(self.formatException(record.exc_info))
        return orjson.dumps(line).decode()


def configure_logging(level: str, fmt: str) -> None:
    handler = logging.StreamHandler()
    if fmt == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
