"""The live demo (``responder demo``): an engine simulator whose faults only real changes
clear, the demo's own Prometheus rules and runbooks, and the scenarios that play them."""
