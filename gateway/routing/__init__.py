"""Choosing and calling the deployment that serves a model: balancing, retries, fallbacks, circuit breakers."""
