"""Azure OpenAI: the OpenAI wire format addressed by deployment; the upstream adapter."""
