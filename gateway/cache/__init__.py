"""Response caches the gateway consults before calling a provider."""
