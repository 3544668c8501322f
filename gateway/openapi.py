"""The OpenAPI 3.1 description of the gateway's HTTP API, served at ``GET /openapi.json``.

Written by hand (the handlers are plain Starlette) and kept honest by tests/gateway/test_fuzz.py, which
generates valid and invalid requests from it and checks that none gets a 5xx or a non-JSON error.
"""

from __future__ import annotations

from typing import Any

__all__ = ["openapi_spec"]

_ERROR = {
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {
            "type": "object",
            "required": ["message", "type", "param", "code"],
            "properties": {
                "message": {"type": "string"},
                "type": {"type": "string"},
                "param": {"type": ["string", "null"]},
                "code": {"type": ["string", "null"]},
            },
        }
    },
}

_MESSAGE = {
    "type": "object",
    "required": ["role"],
    "properties": {
        "role": {"type": "string", "enum": ["system", "developer", "user", "assistant", "tool", "function"]},
        "content": {
            "anyOf": [
                {"type": "string"},
                {"type": "array", "items": {"type": "object"}},
                {"type": "null"},
            ]
        },
        "name": {"type": "string"},
        "tool_calls": {"type": "array", "items": {"type": "object"}},
        "tool_call_id": {"type": "string"},
    },
}

_CHAT_REQUEST = {
    "type": "object",
    "required": ["model", "messages"],
    "properties": {
        "model": {"type": "string", "minLength": 1},
        "messages": {"type": "array", "minItems": 1, "items": _MESSAGE},
        "stream": {"type": "boolean"},
        "stream_options": {"type": "object", "properties": {"include_usage": {"type": "boolean"}}},
        "max_tokens": {"type": "integer", "minimum": 1},
        "max_completion_tokens": {"type": "integer", "minimum": 1},
        "temperature": {"type": "number", "minimum": 0, "maximum": 2},
        "top_p": {"type": "number", "minimum": 0, "maximum": 1},
        "n": {"type": "integer", "minimum": 1},
        "stop": {"anyOf": [{"type": "string"}, {"type": "array", "items": {"type": "string"}}]},
        "seed": {"type": "integer"},
        "user": {"type": "string"},
        "metadata": {"type": "object", "additionalProperties": {"type": "string"}},
        "tools": {"type": "array", "items": {"type": "object"}},
        "tool_choice": {"anyOf": [{"type": "string"}, {"type": "object"}]},
        "response_format": {"type": "object"},
    },
}

_EMBEDDINGS_REQUEST = {
    "type": "object",
    "required": ["model", "input"],
    "properties": {
        "model": {"type": "string", "minLength": 1},
        "input": {
            "anyOf": [
                {"type": "string"},
                {"type": "array", "items": {"type": "string"}},
                {"type": "array", "items": {"type": "integer", "minimum": 0}},
            ]
        },
        "encoding_format": {"type": "string", "enum": ["float", "base64"]},
        "dimensions": {"type": "integer", "minimum": 1},
        "user": {"type": "string"},
    },
}

_ANTHROPIC_ERROR = {
    "type": "object",
    "required": ["type", "error"],
    "properties": {
        "type": {"const": "error"},
        "error": {
            "type": "object",
            "required": ["type", "message"],
            "properties": {"type": {"type": "string"}, "message": {"type": "string"}},
        },
    },
}

_MESSAGES_REQUEST = {
    "type": "object",
    "required": ["model", "messages", "max_tokens"],
    "properties": {
        "model": {"type": "string", "minLength": 1},
        "max_tokens": {"type": "integer", "minimum": 1},
        "system": {"anyOf": [{"type": "string"}, {"type": "array", "items": {"type": "object"}}]},
        "messages": {
            "type": "array",
            "minItems": 1,
            "items": {
                "type": "object",
                "required": ["role", "content"],
                "properties": {
                    "role": {"type": "string", "enum": ["user", "assistant"]},
                    "content": {"anyOf": [{"type": "string"}, {"type": "array", "items": {"type": "object"}}]},
                },
            },
        },
        "stream": {"type": "boolean"},
        "temperature": {"type": "number", "minimum": 0, "maximum": 1},
        "stop_sequences": {"type": "array", "items": {"type": "string"}},
        "tools": {"type": "array", "items": {"type": "object"}},
        "metadata": {"type": "object"},
    },
}

_JSON_ERRORS = {
    str(code): {"description": desc, "content": {"application/json": {"schema": _ERROR}}}
    for code, desc in [
        (400, "Invalid request (bad JSON, missing or invalid field)"),
        (401, "Missing or unknown API key"),
        (404, "Unknown model"),
        (413, "Body too large"),
        (429, "Budget, rate limit, or the provider's rate limit (see Retry-After)"),
        (502, "The provider failed"),
        (504, "The provider timed out"),
    ]
}


def openapi_spec(server_url: str | None = None) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "openapi": "3.1.0",
        "info": {"title": "Apex gateway", "version": "1", "description": "OpenAI-compatible LLM gateway."},
        "components": {
            "securitySchemes": {"apexKey": {"type": "http", "scheme": "bearer"}},
            "schemas": {"Error": _ERROR, "ChatCompletionRequest": _CHAT_REQUEST},
        },
        "security": [{"apexKey": []}],
        "paths": {
            "/v1/chat/completions": {
                "post": {
                    "operationId": "createChatCompletion",
                    "requestBody": {"required": True, "content": {"application/json": {"schema": _CHAT_REQUEST}}},
                    "responses": {
                        "200": {
                            "description": "A chat completion, or an SSE stream of chunks when stream is true",
                            "content": {"application/json": {"schema": {"type": "object"}}, "text/event-stream": {}},
                        },
                        **_JSON_ERRORS,
                    },
                }
            },
            "/v1/embeddings": {
                "post": {
                    "operationId": "createEmbedding",
                    "requestBody": {
                        "required": True,
                        "content": {"application/json": {"schema": _EMBEDDINGS_REQUEST}},
                    },
                    "responses": {
                        "200": {
                            "description": "Embeddings in OpenAI's list format",
                            "content": {"application/json": {"schema": {"type": "object"}}},
                        },
                        **_JSON_ERRORS,
                    },
                }
            },
            "/v1/messages": {
                "post": {
                    "operationId": "createMessage",
                    "description": "Anthropic Messages API (x-api-key auth); errors use Anthropic's error shape.",
                    "requestBody": {"required": True, "content": {"application/json": {"schema": _MESSAGES_REQUEST}}},
                    "responses": {
                        "200": {
                            "description": "A message, or Anthropic SSE events when stream is true",
                            "content": {"application/json": {"schema": {"type": "object"}}, "text/event-stream": {}},
                        },
                        **{
                            code: {
                                "description": r["description"],
                                "content": {"application/json": {"schema": _ANTHROPIC_ERROR}},
                            }
                            for code, r in _JSON_ERRORS.items()
                        },
                    },
                }
            },
            "/v1/models": {
                "get": {
                    "operationId": "listModels",
                    "responses": {
                        "200": {
                            "description": "Configured models",
                            "content": {"application/json": {"schema": {"type": "object"}}},
                        },
                        "401": _JSON_ERRORS["401"],
                    },
                }
            },
            "/health": {
                "get": {
                    "operationId": "health",
                    "security": [],
                    "responses": {
                        "200": {
                            "description": "Liveness and event-writer counters",
                            "content": {"application/json": {"schema": {"type": "object"}}},
                        }
                    },
                }
            },
        },
    }
    if server_url:
        spec["servers"] = [{"url": server_url}]
    return spec
