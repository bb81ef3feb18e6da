"""The runbook language: models, loader with file:line errors, matcher, templates."""
