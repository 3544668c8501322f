"""Where the benches find the shared evaluation data: ``../shared/data`` beside the repository root, in any clone.

(For this checkout at ``/work/main`` that is ``/work/shared/data``; the protocols are in its ``README.md``.)
"""

from pathlib import Path

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
