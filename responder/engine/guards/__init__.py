"""Guard rails, one small pure stage per module, each testable alone.

Their state lives in ``TargetState.guard`` (the ``remediation`` table), never in process
memory: a restarted worker remembers the last action and the actions of the window.
"""
