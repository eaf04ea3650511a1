"""gunicorn settings for the Procfile's `web:` line (bind, workers and threads stay there:
the gthread worker, 2 x 4 threads, was chosen by measurement; see BENCHMARKS.md).

/metrics must add up every worker process: prometheus-client's multiprocess
mode keeps the values in files in PROMETHEUS_MULTIPROC_DIR. Give it a fresh
folder at each start (or use the one the operator set, emptied), tell it
when a worker dies, as prometheus-client's documentation asks, and remove
the folder we made when gunicorn exits (an operator's folder is left).
"""
import os
import shutil
import tempfile

# Every access-log field escaped: a request cannot split the log or forge a line.
logger_class = "ivr.logs.GunicornLogger"

# Only when none is set: mkdtemp in setdefault's argument made a folder at every start.
_OWN_FOLDER = not os.environ.get("PROMETHEUS_MULTIPROC_DIR")
if _OWN_FOLDER:
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="calm-line-metrics-")


def on_starting(server):
    folder = os.environ["PROMETHEUS_MULTIPROC_DIR"]
    shutil.rmtree(folder, ignore_errors=True)  # values of an earlier run would be added in
    os.makedirs(folder, exist_ok=True)


def child_exit(server, worker):
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)


def when_ready(server):
    # Once, before the first worker is forked: the process that writes every worker's
    # anonymous events (ivr/call/recorder.py; only for the line's own app).
    from ivr.call import recorder

    server.calm_line_recorder = recorder.start(getattr(server.app, "app_uri", None))


def on_exit(server):
    from ivr.call import recorder

    recorder.stop(getattr(server, "calm_line_recorder", None))  # its last events in first
    # A folder per start would pile up in the temporary directory (45 in a day of tests).
    if _OWN_FOLDER:
        shutil.rmtree(os.environ["PROMETHEUS_MULTIPROC_DIR"], ignore_errors=True)


GC_THRESHOLDS = (20_000, 20, 100)  # CPython's default: (700, 10, 10)


def post_worker_init(worker):
    # The app is loaded: move everything it made (the flow, its rendered answers,
    # SQLAlchemy's tables, the modules) out of the garbage collector's sight. Each
    # collection then walks only what requests make, not the whole app: about 20 us
    # a webhook in-process (BENCHMARKS.md). Nothing frozen is ever freed, which is
    # what the app's own objects are for; garbage from loading is collected first.
    import gc

    gc.collect()
    gc.freeze()
    # And collect less often. CPython's first generation is collected every 700 net
    # allocations, the second every 10 of those: a web worker that allocates a few hundred
    # objects a request ran a collection every few requests, each one holding the GIL
    # while it walked what the requests and the metrics' queue held (a webhook noted for
    # the metrics lives up to a fold, 0.25 s, and is walked again each time). Measured
    # under the Procfile's web line, the recorded mix's p99 fell by about a tenth with
    # these thresholds (BENCHMARKS.md). Almost everything a request makes is freed by
    # reference counting at once; the collector is for cycles, which are few.
    gc.set_threshold(*GC_THRESHOLDS)
    # Work in batches on a thread of its own (the metrics' fold when webhooks come slowly;
    # the events writer when the recorder cannot take them): with CPython's default 5 ms
    # switch interval a webhook waiting for the GIL behind a batch waited up to 5 ms at
    # each turn, which set the p99. 1 ms keeps the batches off the webhooks' tail at
    # little cost (switches happen only when threads contend).
    import sys

    sys.setswitchinterval(0.001)
