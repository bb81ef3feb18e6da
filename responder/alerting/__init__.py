"""Alert definitions the worker evaluates itself against Prometheus (metric streams).

- ``schema``: the definition language; ``loader``: a folder of definitions, every error
  located (the runbook loader's conventions and helpers); ``store``: hot reload.
- ``rule``: a Prometheus alerting rule's state machine per series (pending, firing,
  resolved, ``keep_firing_for``), pure: no I/O, time passed in.
- ``poller``: evaluates each definition at its interval through prometheus-api-client in
  a thread, with a timeout, backing off while Prometheus is down.

The Faust wiring is ``streams.metric_streams``.
"""
