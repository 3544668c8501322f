"""What an image or an audio clip costs in prompt tokens, by each provider's published rules, read cheaply.

Sizes come from the file's header alone (PNG, JPEG, GIF, WebP; WAV for audio), never from decoding it; what cannot
be read is charged at the provider's worst case, so an estimate here is an upper bound on what a provider bills:

    OpenAI, tiles   fit in 2048x2048, then the short side to 768; base + per-512-px-tile tokens by model
                    (85/170; gpt-4o-mini 2833/5667; o1/o3 75/150; gpt-5 70/140); ``detail: low`` = base only
    OpenAI, patches 32-px patches, capped, times the model's multiplier (gpt-4.1-mini, -nano, o4-mini, gpt-5-mini...)
    Anthropic       ceil(w*h/750) after the long edge fits 1568 px (claude >= 4.7: 2576 px), at most 1600 (4784)
    Gemini          258 when both sides fit 384 px, else 258 per 768-px tile; Gemini 3 at least 1120
    audio           WAV: its header's duration; any other clip: its bytes at 8 kbit/s, the lowest MP3 bitrate;
                    10 tokens a second (OpenAI), 32 (Gemini)
"""

from __future__ import annotations

import base64
import binascii
import functools
import math
import re
import struct
from collections.abc import Iterable

__all__ = [
    "audio_tokens",
    "data_url_bytes",
    "image_size",
    "image_tokens",
    "max_input_tokens",
]

_HEADER_B64_CHARS = 65_536
"""Base64 characters decoded to find an image's size (48 KiB: a JPEG's frame header follows its EXIF block)."""

UNKNOWN_MAX_INPUT_TOKENS = 2_097_152
"""Reserved for input whose size cannot be bounded, when the price table does not know the model's window."""

_TILE_COSTS: tuple[tuple[str, tuple[int, int]], ...] = (  # longest prefix first
    ("gpt-4o-mini", (2833, 5667)),
    ("gpt-5-chat", (70, 140)),
    ("gpt-5.1", (70, 140)),
    ("gpt-5", (70, 140)),
    ("o1", (75, 150)),
    ("o3", (75, 150)),
)
_PATCH_MULTIPLIERS: tuple[tuple[str, float], ...] = (
    ("gpt-4.1-mini", 1.62),
    ("gpt-4.1-nano", 2.46),
    ("gpt-5-mini", 1.62),
    ("gpt-5-nano", 2.46),
    ("o4-mini", 1.72),
    ("gpt-5.2", 1.2),
    ("gpt-5.4", 1.2),
    ("gpt-5.5", 1.2),
    ("gpt-5.6", 1.2),
    ("gpt-6", 1.2),
)
_PATCH_BUDGET = 6144  # the largest patch cap OpenAI applies below ``detail: original`` (10,000)
_CLAUDE_VERSION = re.compile(r"claude-(?:(?:haiku|sonnet|opus)-)?(\d+)(?:[-.](\d{1,2})(?!\d))?")


# -- reading sizes from headers --------------------------------------------------------------------------------------


def data_url_bytes(url: str, limit: int | None = None) -> bytes | None:
    """The decoded payload of a ``data:...;base64,`` URL (its first ``limit`` base64 characters), else None."""
    if not url.startswith("data:"):
        return None
    comma = url.find(",", 0, 256)
    if comma < 0 or not url[:comma].endswith(";base64"):
        return None
    encoded = url[comma + 1 :] if limit is None else url[comma + 1 : comma + 1 + limit - limit % 4]
    try:
        return base64.b64decode(encoded)
    except (binascii.Error, ValueError):
        return None


def _jpeg_size(head: bytes) -> tuple[int, int] | None:
    i = 2
    while i + 9 < len(head):
        if head[i] != 0xFF:
            return None
        marker = head[i + 1]
        if marker == 0xFF:  # fill byte
            i += 1
            continue
        if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):
            h, w = struct.unpack(">HH", head[i + 5 : i + 9])
            return w, h
        if marker in (0xD8, 0x01) or 0xD0 <= marker <= 0xD7:
            i += 2
            continue
        (length,) = struct.unpack(">H", head[i + 2 : i + 4])
        i += 2 + length
    return None


def _header_size(head: bytes) -> tuple[int, int] | None:
    if head[:8] == b"\x89PNG\r\n\x1a\n" and len(head) >= 24:
        w, h = struct.unpack(">II", head[16:24])
        return w, h
    if head[:6] in (b"GIF87a", b"GIF89a") and len(head) >= 10:
        w, h = struct.unpack("<HH", head[6:10])
        return w, h
    if head[:2] == b"\xff\xd8":
        return _jpeg_size(head)
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP" and len(head) >= 30:
        chunk = head[12:16]
        if chunk == b"VP8X":
            return 1 + int.from_bytes(head[24:27], "little"), 1 + int.from_bytes(head[27:30], "little")
        if chunk == b"VP8L":
            bits = int.from_bytes(head[21:25], "little")
            return (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1
        if chunk == b"VP8 ":
            w, h = struct.unpack("<HH", head[26:30])
            return w & 0x3FFF, h & 0x3FFF
    return None


def image_size(url: str) -> tuple[int, int] | None:
    """(width, height) of a data-URL image, read from its header; None for a remote URL or an unreadable header."""
    head = data_url_bytes(url, _HEADER_B64_CHARS)
    if not head:
        return None
    try:
        size = _header_size(head)
    except struct.error:
        return None
    if size is None or size[0] <= 0 or size[1] <= 0:
        return None
    return size


# -- image rules -----------------------------------------------------------------------------------------------------


def _openai_tiles(size: tuple[int, int] | None, base: int, tile: int, detail: str) -> int:
    if detail == "low":
        return base
    if size is None:
        return base + 8 * tile  # 2048x768 after scaling: 4 x 2 tiles, the most any image can take
    scale = min(1.0, 2048 / max(size))
    fw, fh = size[0] * scale, size[1] * scale
    scale = min(1.0, 768 / min(fw, fh))
    w, h = max(1, math.floor(fw * scale)), max(1, math.floor(fh * scale))
    return base + math.ceil(w / 512) * math.ceil(h / 512) * tile


def _openai_patches(size: tuple[int, int] | None, multiplier: float, detail: str) -> int:
    budget = 10_000 if detail == "original" else _PATCH_BUDGET
    patches = budget if size is None else min(math.ceil(size[0] / 32) * math.ceil(size[1] / 32), budget)
    return math.ceil(patches * multiplier)


def _anthropic(size: tuple[int, int] | None, model: str) -> int:
    m = _CLAUDE_VERSION.search(model)
    high = m is not None and (int(m[1]), int(m[2] or 0)) >= (4, 7)
    edge, cap = (2576, 4784) if high else (1568, 1600)
    if size is None:
        return cap
    w, h = size
    scale = min(1.0, edge / max(w, h))
    return min(math.ceil(math.ceil(w * scale) * math.ceil(h * scale) / 750), cap)


def _gemini(size: tuple[int, int] | None, model: str) -> int:
    floor = 1120 if "gemini-3" in model else 258
    if size is None:
        return max(floor, 16 * 258)  # 3072x3072: larger images are scaled down before tiling
    w, h = size
    if w <= 384 and h <= 384:
        return floor
    return max(floor, math.ceil(w / 768) * math.ceil(h / 768) * 258)


def _image_rule(model: str, size: tuple[int, int] | None, detail: str) -> int:
    m = model.lower().rsplit("/", 1)[-1]
    if "claude" in m:
        return _anthropic(size, m)
    if "gemini" in m:
        return _gemini(size, m)
    for prefix, mult in _PATCH_MULTIPLIERS:
        if m.startswith(prefix):
            return _openai_patches(size, mult, detail)
    for prefix, (base, tile) in _TILE_COSTS:
        if m.startswith(prefix):
            return _openai_tiles(size, base, tile, detail)
    return _openai_tiles(size, 85, 170, detail)


def image_tokens(url: str, detail: str, models: Iterable[str]) -> int:
    """The most any of ``models`` bills for the image at ``url`` (a data URL's size is read; a remote one's is not)."""
    size = image_size(url)
    return max((_image_rule(m, size, detail) for m in models), default=_image_rule("", size, detail))


# -- audio and the context window ------------------------------------------------------------------------------------


def _wav_seconds(raw: bytes) -> float | None:
    if raw[:4] != b"RIFF" or raw[8:12] != b"WAVE":
        return None
    i, byte_rate = 12, 0
    while i + 8 <= len(raw):
        chunk, size = raw[i : i + 4], int.from_bytes(raw[i + 4 : i + 8], "little")
        if chunk == b"fmt " and i + 20 <= len(raw):
            byte_rate = int.from_bytes(raw[i + 16 : i + 20], "little")
        elif chunk == b"data":
            if byte_rate <= 0:
                return None
            data = min(size, len(raw) - i - 8)
            return data / byte_rate
        i += 8 + size + (size & 1)
    return None


def audio_tokens(data: str, models: Iterable[str]) -> int:
    """Tokens for a base64 ``input_audio`` clip: its duration (WAV header, else the 8 kbit/s bound) x the rate."""
    try:
        raw = base64.b64decode(data)
    except (binascii.Error, ValueError):
        raw = b""
    seconds = _wav_seconds(raw) if raw[:4] == b"RIFF" else None
    if seconds is None:
        seconds = max(len(raw), len(data) * 3 // 4) / 1000  # 8 kbit/s: no MP3 (or other clip) is longer
    rate = 32 if any("gemini" in m.lower() for m in models) else 10
    return max(1, math.ceil(seconds * rate))


@functools.cache
def _context_windows() -> dict[str, int]:
    import orjson

    from contracts.pricing import litellm_price_file

    table = orjson.loads(litellm_price_file().read_bytes())
    out: dict[str, int] = {}
    for name, entry in table.items():
        limit = entry.get("max_input_tokens") if isinstance(entry, dict) else None
        if isinstance(limit, int) and limit > 0:
            out[name] = limit
    return out


def max_input_tokens(models: Iterable[str]) -> int:
    """The largest context window among ``models`` (the most a prompt can bill); unknown: a 2M-token window."""
    windows = _context_windows()
    found = [windows.get(m) or windows.get(m.split("/", 1)[-1]) for m in models]
    if not found or None in found:
        return UNKNOWN_MAX_INPUT_TOKENS
    return max(w for w in found if w is not None)
