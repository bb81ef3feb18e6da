"""Domain data shared by every layer: alerts, incidents, commands, audit events."""
