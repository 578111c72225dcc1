"""MLflow's own tracking server for one workspace, as the control plane runs it behind ``/mlflow/dev/``.

``python -m loopline.control.tracking_backend PORT`` serves MLflow's REST API and its artifact proxy on
127.0.0.1 only, in this one process (so it ends with the control plane that started it): the store from
``MLFLOW_BACKEND_STORE_URI`` and ``MLFLOW_REGISTRY_STORE_URI``, run and model files under
``MLFLOW_ARTIFACTS_DESTINATION``. The control plane signs callers in and checks what they may do before
a request reaches it; nothing else should.
"""

from __future__ import annotations

import os
import sys

__all__ = ["main"]


def main(argv: list[str]) -> None:
    """Serve until stopped."""
    import uvicorn
    from mlflow.server.constants import (
        ARTIFACTS_DESTINATION_ENV_VAR,
        BACKEND_STORE_URI_ENV_VAR,
        REGISTRY_STORE_URI_ENV_VAR,
        SERVE_ARTIFACTS_ENV_VAR,
    )

    os.environ[BACKEND_STORE_URI_ENV_VAR] = os.environ["MLFLOW_BACKEND_STORE_URI"]
    os.environ[REGISTRY_STORE_URI_ENV_VAR] = os.environ["MLFLOW_REGISTRY_STORE_URI"]
    os.environ[ARTIFACTS_DESTINATION_ENV_VAR] = os.environ["MLFLOW_ARTIFACTS_DESTINATION"]
    os.environ[SERVE_ARTIFACTS_ENV_VAR] = "true"
    from mlflow.server.fastapi_app import app

    uvicorn.run(app, host="127.0.0.1", port=int(argv[0]), log_level="warning", access_log=False)


if __name__ == "__main__":
    main(sys.argv[1:])
