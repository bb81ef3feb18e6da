"""A worker whose runbooks need no cluster never loads the Kubernetes client.

kubernetes_asyncio's API models are some 50 MiB of a worker's memory; the action
catalogue imports the Kubernetes family (and the client) only when one of its actions
first runs. Checked in a fresh interpreter, as the worker starts.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from runbook_support import MINIMAL

CACHE_ONLY = (
    MINIMAL.replace("id: minimal", "id: cache_only")
    .replace("alertname: Minimal", "alertname: CacheCold")
    .replace(
        "  - action: deployment.restart\n", '  - action: cache.clear\n    with: {pattern: "g:*"}\n'
    )
)

PROBE = """
import json, sys
from responder.settings import get_settings
from streams.app import create_streams
streams = create_streams(get_settings())
streams.check_startup()
print(json.dumps(sorted(m for m in sys.modules if m.startswith(("kubernetes_asyncio", "responder.actions.kube")))))
"""


def _loaded_kube_modules(runbooks: Path, tmp_path: Path) -> list[str]:
    env = {
        "PATH": "/usr/bin:/bin",
        "HOME": str(tmp_path),
        "KUBECONFIG": str(tmp_path / "no-such-kubeconfig"),
        "RESPONDER_REMEDIATION__RUNBOOKS_DIR": str(runbooks),
        "RESPONDER_ACTIONS__REDIS_URLS": json.dumps({"default": "redis://127.0.0.1:6399/0"}),
        "RESPONDER_ACTIONS__ALLOWED_NAMESPACES": json.dumps(["musearoo"]),
    }
    done = subprocess.run(
        [sys.executable, "-c", PROBE], env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr[-3000:]
    loaded: list[str] = json.loads(done.stdout.splitlines()[-1])
    return loaded


def test_a_cache_only_worker_does_not_import_the_kubernetes_client(
    runbook_dir: Path, tmp_path: Path
) -> None:
    (runbook_dir / "cache_only.yaml").write_text(CACHE_ONLY)

    assert _loaded_kube_modules(runbook_dir, tmp_path) == []
