"""``python -m deployments [MODEL ...]``: serve every model's retrain and monitor deployments from one process."""

from __future__ import annotations

import sys

from deployments.serve import serve

if __name__ == "__main__":
    serve(sys.argv[1:] or None)
