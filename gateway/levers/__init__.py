"""Optimizer levers: exact cache, semantic cache, compression, learned routing — one interface (``base.Lever``),
one registry (``registry.register_lever``), run in order as one loop on the request path (``gateway.chat``)."""
