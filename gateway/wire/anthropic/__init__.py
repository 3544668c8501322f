"""Anthropic Messages: the inbound /v1/messages API, the translation both ways, and the upstream adapter."""
