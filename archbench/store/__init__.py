"""The results store: every run recorded in one SQLite file (standard library only), so that
``archbench history`` can list what was measured, ``archbench report --from-store`` can
render a stored run, and ``--baseline`` can compare a run with an earlier one. Nothing here
imports torch or pandas at import time."""

from archbench.store.database import SCHEMA_VERSION, Store
from archbench.store.record import (
    STORE_FILE,
    git_revision,
    new_run_id,
    record_report,
    store_location,
)

__all__ = ["SCHEMA_VERSION", "STORE_FILE", "Store", "git_revision", "new_run_id",
           "record_report", "store_location"]
