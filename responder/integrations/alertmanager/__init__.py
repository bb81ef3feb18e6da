"""Alertmanager as a service we call (API v2): silences asked for from ChatOps."""
