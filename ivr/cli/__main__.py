"""`python -m ivr.cli ...`: the `ivr` command, where its script may not be on PATH (gunicorn's
master starts the events recorder so: ivr/call/recorder.py)."""
from ivr.cli import main

main()
