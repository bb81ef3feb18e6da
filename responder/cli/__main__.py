"""``python -m responder.cli``: how the demo starts its ingest and worker children."""

from responder.cli import main

main()
