"""`python -m app.serve UVICORN-ARGS...`: Uvicorn's own command line, run by the process that
also serves the metrics of every Uvicorn process (app/metrics.py). With --workers N that is
Uvicorn's supervisor, which outlives and replaces its workers, as Gunicorn's arbiter does for
Django; with one worker, the worker itself."""

import sys

import uvicorn

from . import metrics

if __name__ == "__main__":
    metrics.serve()
    sys.argv[0] = "uvicorn"
    sys.exit(uvicorn.main())
