"""Where the benches find the shared evaluation data: ``../shared/data`` beside the repository root, in any clone
(the protocols are in its ``README.md``)."""

from pathlib import Path

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
