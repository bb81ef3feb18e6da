"""MuseAroo Responder: turns Alertmanager alerts into verified remediation.

The package is the domain core (models, runbooks, actions, integrations) plus
its edges (ingest, the local stack, the CLI). The Faust wiring lives in the
sibling package ``streams`` so that nothing here depends on Kafka.
"""

__version__ = "0.1.0"
