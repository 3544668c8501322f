"""OpenAI: the canonical format. Inbound chat completions, models and embeddings; the OpenAI-compatible adapter."""
