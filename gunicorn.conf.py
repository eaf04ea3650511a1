"""gunicorn settings for the Procfile's `web:` line (bind, workers and threads stay there).

/metrics must add up every worker process: prometheus-client's multiprocess
mode keeps the values in files in PROMETHEUS_MULTIPROC_DIR. Give it a fresh
folder at each start (or use the one the operator set, emptied), and tell it
when a worker dies, as prometheus-client's documentation asks.
"""
import os
import shutil
import tempfile

# Every access-log field escaped: a request cannot split the log or forge a line.
logger_class = "ivr.logs.GunicornLogger"

os.environ.setdefault("PROMETHEUS_MULTIPROC_DIR", tempfile.mkdtemp(prefix="calm-line-metrics-"))


def on_starting(server):
    folder = os.environ["PROMETHEUS_MULTIPROC_DIR"]
    shutil.rmtree(folder, ignore_errors=True)  # values of an earlier run would be added in
    os.makedirs(folder, exist_ok=True)


def child_exit(server, worker):
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)
