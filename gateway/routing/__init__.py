"""Choosing and calling the deployment that serves a model."""
