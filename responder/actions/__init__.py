"""Remediation actions: one module per family behind one async interface, one registry."""
