"""``responder probe ENGINE_OR_BASE``: the generation probe from a shell, as a standalone check.

For an operator asking "is this engine healthy right now?" and for scripts (cron, a
readiness gate): the same checker, thresholds and address resolution a runbook's
``verify: probe:`` uses. ENGINE_OR_BASE is a name of ``actions.http_base_urls`` (the call
goes to that base URL), or else an engine whose Service ``<ENGINE>-engine`` (``--service``
to name another) in ``--namespace`` is read from Kubernetes, and every ready pod behind it
is probed, as ``model.reload`` reaches them.

Exit status: 0 healthy, 1 failed, 3 quality or latency degraded (2 is a usage error).
"""

from __future__ import annotations

import asyncio
import json
import sys
from typing import TYPE_CHECKING, Any

import click
from pydantic import ValidationError

from responder.verification.probe import PROBE_PATH

if TYPE_CHECKING:
    from responder.verification import GenerationProbe, Verdict

EXIT = {"healthy": 0, "failed": 1, "quality_degraded": 3, "latency_degraded": 3}


@click.command("probe")
@click.argument("engine_or_base", metavar="ENGINE_OR_BASE")
@click.option("--namespace", "-n", help="The engine's namespace (not for a base URL name).")
@click.option("--service", help="The Service whose pods are probed (default: ENGINE-engine).")
@click.option("--port", type=click.IntRange(1, 65535), default=8080, show_default=True)
@click.option("--path", default=PROBE_PATH, show_default=True)
@click.option("--complexity", type=click.FloatRange(0, 1), default=0.5, show_default=True)
@click.option("--style", default="test", show_default=True)
@click.option("--min-confidence", type=click.FloatRange(0, 1), default=0.7, show_default=True)
@click.option(
    "--max-latency-ms",
    type=click.FloatRange(0, 60_000, min_open=True),
    default=200.0,
    show_default=True,
)
@click.option("--timeout", type=click.FloatRange(0, min_open=True), default=5.0, help="Seconds.")
@click.option("--kubeconfig", type=click.Path(exists=True, dir_okay=False), default=None)
@click.option("--json", "as_json", is_flag=True, help="Print the measured values as JSON.")
def probe(
    engine_or_base: str,
    namespace: str | None,
    service: str | None,
    port: int,
    path: str,
    complexity: float,
    style: str,
    min_confidence: float,
    max_latency_ms: float,
    timeout: float,
    kubeconfig: str | None,
    as_json: bool,
) -> None:
    """Ask ENGINE_OR_BASE for a test generation; print the verdict and what it measured."""
    from responder.models.target import Target
    from responder.runbooks.schema import ProbeCheck
    from responder.settings import get_settings
    from responder.verification import GenerationProbe

    settings = get_settings().actions
    is_base = engine_or_base in settings.http_base_urls
    try:
        # The runbook's own model checks the path and the style as a runbook's are checked.
        checked = ProbeCheck(path=path, style=style)
    except ValidationError as exc:
        raise click.BadParameter(exc.errors()[0]["msg"]) from exc
    target = None
    if not is_base:
        if namespace is None:
            raise click.BadParameter(
                f"{engine_or_base!r} is not in actions.http_base_urls; to probe the engine's "
                "pods, give its --namespace",
                param_hint="ENGINE_OR_BASE",
            )
        try:
            target = Target(
                namespace=namespace, kind="service", name=service or f"{engine_or_base}-engine"
            )
        except ValidationError as exc:
            raise click.BadParameter(exc.errors()[0]["msg"]) from exc
    check = GenerationProbe(
        base=engine_or_base if is_base else None,
        service=target,
        port=port,
        path=checked.path,
        complexity=complexity,
        style=checked.style,
        min_confidence=min_confidence,
        max_latency_ms=max_latency_ms,
    )
    verdict = asyncio.run(_probe(check, call_timeout_s=timeout, kubeconfig=kubeconfig))
    measured: dict[str, Any] = dict(verdict.measured)
    if as_json:
        click.echo(json.dumps(measured, indent=2))
    else:
        for key in ("verdict", "success", "confidence", "latency_ms", "engine", "url", "error"):
            if measured.get(key) is not None:
                click.echo(f"{key + ':':<12} {measured[key]}")
        for each in measured.get("probes", []):
            click.echo(
                f"  {each['verdict']:<17} {each['url']} confidence {each['confidence']} "
                f"latency {each['latency_ms']} ms"
            )
        click.echo(f"{'detail:':<12} {verdict.detail}")
    sys.exit(EXIT[str(measured["verdict"])])


async def _probe(
    check: GenerationProbe, *, call_timeout_s: float, kubeconfig: str | None
) -> Verdict:
    from responder.actions.catalogue import ActionCatalogue
    from responder.settings import get_settings
    from responder.verification import ProbeChecker

    settings = get_settings().actions
    # The Kubernetes client is made only for a pod probe (on the first pod_urls call).
    catalogue = ActionCatalogue(settings, kubeconfig=kubeconfig)
    checker = ProbeChecker(
        settings.http_base_urls,
        call_timeout_s,
        pods=catalogue.pod_urls,
        parallelism=settings.endpoint_parallelism,
    )
    try:
        return await checker(check)
    finally:
        await checker.close()
        await catalogue.close()
