"""Settings shared by the base of every section: the frozen model and the error a bad file raises."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

__all__ = ["ConfigError", "Frozen"]


class ConfigError(Exception):
    """The configuration cannot be used; the message names the file and field and what to do."""


class Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
