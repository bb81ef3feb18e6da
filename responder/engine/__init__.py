"""The incident state machine: pure decisions over incident records, no I/O."""
