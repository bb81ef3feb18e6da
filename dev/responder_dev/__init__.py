"""MuseAroo Responder's development tools: the local stack of real servers and the demo.

A distribution of its own (``musearoo-responder-dev``, installed from ``dev/`` by ``make
setup``) so the wheel production installs carries none of it. It depends on the runtime
package ``responder``; the runtime never imports it except to register ``responder stack``
and ``responder demo`` when it is installed (``responder/cli/devtools.py``).
"""
