"""Each wire format in one folder: its inbound API, its translation to and from the canonical (OpenAI chat) shape,
and its provider adapter."""
