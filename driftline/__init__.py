"""driftline: workflow-as-code MLOps on Prefect 3.

The package holds the logic that flows, tasks, the CLI and the BentoML service share. It imports nothing heavy
at import time; great_expectations, whylogs and bentoml are imported inside the functions that need them
(see ``driftline.libs``).
"""

__version__ = "0.1.0"
