"""Request schemas checked at the edge, before admission or any lever: each wire format's body and the admin API's.

Hand-written checks (a plain chat request costs a few microseconds); a failure is one ``InvalidRequestError``
(400) whose ``param`` is the offending field's path in the caller's spelling. Unknown fields pass; known fields
must have their documented type and range.
"""

from gateway.schemas.admin import validate_key_fields, validate_rotate, validate_team
from gateway.schemas.anthropic_messages import validate_messages
from gateway.schemas.openai_chat import validate_chat
from gateway.schemas.openai_embeddings import validate_embeddings

__all__ = [
    "validate_chat",
    "validate_embeddings",
    "validate_key_fields",
    "validate_messages",
    "validate_rotate",
    "validate_team",
]
