"""Crash-test fault, injected from outside the project's code: a process started with
PYTHONPATH=tests/faults and LSTMPATHS_FAULT=upload kills itself with SIGKILL when it uploads the
third artifact of a paths run, leaving a half-written run behind (test_reliability.py)."""

import os

if os.environ.get("LSTMPATHS_FAULT") == "upload":
    import signal

    from mlflow.tracking.client import MlflowClient

    _upload = MlflowClient.log_artifact
    _seen: dict[str, int] = {}

    def _log_artifact(self, run_id, local_path, artifact_path=None):
        if str(local_path).endswith((".png", ".npz", ".pt", ".csv", ".gif", ".html")):
            _seen[run_id] = _seen.get(run_id, 0) + 1
            if _seen[run_id] == 3 and "paths" in self.get_run(run_id).data.tags.get(
                "lstmpaths.stage", ""
            ):
                os.kill(os.getpid(), signal.SIGKILL)
        return _upload(self, run_id, local_path, artifact_path)

    MlflowClient.log_artifact = _log_artifact
