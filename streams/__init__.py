"""The Faust application: topics, tables and agents that wire the core to Kafka."""
