"""Action catalogue figures: time to complete per action (p50/p95) against local servers, and
cache.clear on 1,000,000 keys: keys deleted per second and Redis latency while it runs.

    .venv/bin/python bench/actions_bench.py                 # Redis + HTTP actions
    .venv/bin/python bench/actions_bench.py --kube          # + Kubernetes actions (local control plane)
    .venv/bin/python bench/actions_bench.py --keys 200000   # a quicker cache.clear run

Redis latency is sampled from a separate process (so the benchmark's own event loop cannot
distort it), as ``redis-cli --latency`` does: a PING every 10 ms, round trip measured, first
while Redis is idle (the baseline, same run) and then during the clear. Redis's own view comes
from ``INFO latencystats`` (per-command percentiles, Redis >= 7) and ``INFO commandstats``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path
from typing import Any

import redis.asyncio as aioredis
from aiohttp import web

from responder.actions.base import ActionContext, ActionResult
from responder.actions.cache import CacheClear
from responder.actions.guards import Guards
from responder.actions.http import HttpClient, HttpRequest
from responder.actions.notify import Notify
from responder.actions.params import CacheClearParams, HTTPRequestParams, NotifyParams
from responder.actions.retry import RetryPolicy
from responder.logging import configure
from responder.models.target import Target
from responder.settings import ActionsSettings
from responder_dev.stack.process import free_port
from responder_dev.stack.redis import Redis

PINGER = r"""
import json, sys, threading, time
import redis
r = redis.Redis(host="127.0.0.1", port=int(sys.argv[1]))
stop = threading.Event()
threading.Thread(target=lambda: (sys.stdin.read(), stop.set()), daemon=True).start()
samples = []
while not stop.is_set():
    t = time.perf_counter(); r.ping(); samples.append((time.perf_counter() - t) * 1000)
    time.sleep(0.01)
print(json.dumps(samples))
"""

_seq = 0


def ctx(**kw: Any) -> ActionContext:
    global _seq
    _seq += 1
    return ActionContext(incident_id=f"bench-{_seq}", step=0, **kw)


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def line(name: str, ms: list[float]) -> str:
    return f"{name:<22} n={len(ms):<4} p50={statistics.median(ms):8.2f} ms  p95={pct(ms, 0.95):8.2f} ms"


async def timed(
    runs: int,
    once: Callable[[], Awaitable[ActionResult]],
    before: Callable[[], Awaitable[None]] | None = None,
) -> list[float]:
    out: list[float] = []
    for _ in range(runs):
        if before is not None:
            await before()
        start = time.perf_counter()
        await once()
        out.append((time.perf_counter() - start) * 1000)
    return out


async def seed(client: aioredis.Redis, prefix: str, count: int, chunk: int = 10_000) -> None:
    for start in range(0, count, chunk):
        async with client.pipeline(transaction=False) as pipe:
            for i in range(start, min(count, start + chunk)):
                pipe.set(f"{prefix}{i}", "v")
            await pipe.execute()


class Pinger:
    """PING every 10 ms from another process; the round trips in ms when stopped."""

    def __init__(self, port: int) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-c", PINGER, str(port)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )

    def stop(self) -> list[float]:
        out, _ = self.proc.communicate("", timeout=30)
        samples: list[float] = json.loads(out)
        return samples


def spikes(events: list[Any]) -> str:
    """LATENCY LATEST rows as 'event=max_ms, ...' ('none' when Redis saw nothing slow)."""
    rows = [f"{e[0].decode() if isinstance(e[0], bytes) else e[0]}={e[3]}" for e in events]
    return ", ".join(rows) or "none"


def latency_summary(name: str, samples: list[float]) -> str:
    over = sum(1 for s in samples if s > 10)
    return (
        f"{name:<22} samples={len(samples):<5} p50={statistics.median(samples):.3f} ms  "
        f"p99={pct(samples, 0.99):.3f} ms  max={max(samples):.3f} ms  >10ms={over}"
    )


async def per_action_redis_http(settings: ActionsSettings, runs: int) -> list[str]:
    guards, policy = Guards.from_settings(settings), RetryPolicy(3, 0.05, 0.5)
    out = []
    cache = CacheClear(settings, guards, policy)
    client = aioredis.Redis.from_url(settings.redis_urls["default"])
    target = Target(namespace="bench", name="generation-engine")
    out.append(
        line(
            "cache.clear (1k keys)",
            await timed(
                runs,
                lambda: cache.run(ctx(), target, CacheClearParams(pattern="gen:*")),
                before=lambda: seed(client, "gen:", 1000),
            ),
        )
    )
    await cache.close()
    await client.aclose()

    async def ok(_: web.Request) -> web.Response:
        return web.json_response({"ok": True})

    app = web.Application()
    app.router.add_post("/drain", ok)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    http_settings = settings.model_copy(
        update={"http_base_urls": {"hub": f"http://127.0.0.1:{port}"}}
    )
    http = HttpClient(http_settings)
    request = HttpRequest(http, http_settings, Guards.from_settings(http_settings), policy)
    params = HTTPRequestParams(base="hub", path="/drain")
    out.append(line("http.request", await timed(runs, lambda: request.run(ctx(), target, params))))
    await http.close()
    await runner.cleanup()
    notify = Notify()
    out.append(
        line(
            "notify",
            await timed(runs, lambda: notify.run(ctx(), target, NotifyParams(message="hi"))),
        )
    )
    return out


async def clear_million(url: str, port: int, keys: int, batch: int) -> list[str]:
    client = aioredis.Redis.from_url(url)
    await client.flushdb()
    t0 = time.perf_counter()
    await seed(client, "generation:", keys)
    await seed(client, "session:", keys // 10)
    seeded_s = time.perf_counter() - t0
    settings = ActionsSettings(allowed_namespaces=["bench"], redis_urls={"default": url})
    cache = CacheClear(settings, Guards.from_settings(settings), RetryPolicy(3, 0.05, 0.5))
    await client.config_resetstat()
    # Redis records every event slower than this (ms) in LATENCY LATEST: the server-side
    # answer to "was there a spike above 10 ms", free of client scheduling noise.
    await client.config_set("latency-monitor-threshold", 5)
    await client.execute_command("LATENCY", "RESET")

    idle = Pinger(port)
    await asyncio.sleep(2.0)  # the baseline window: Redis idle, same run
    baseline = idle.stop()
    idle_events = await client.execute_command("LATENCY", "LATEST")
    await client.execute_command("LATENCY", "RESET")

    busy = Pinger(port)
    await asyncio.sleep(0.2)
    start = time.perf_counter()
    result = await cache.run(
        ctx(),
        Target(namespace="bench", name="x"),
        CacheClearParams(pattern="generation:*", batch=batch),
    )
    elapsed = time.perf_counter() - start
    during = busy.stop()

    events = await client.execute_command("LATENCY", "LATEST")
    stats = await client.info("latencystats")
    commands = await client.info("commandstats")
    left = await client.dbsize()
    await cache.close()
    await client.flushdb()
    await client.aclose()
    deleted = int(result.before["matching"]) if result.before else 0

    def server(cmd: str) -> str:
        lat = stats.get(f"latency_percentiles_usec_{cmd}", {})
        calls = commands.get(f"cmdstat_{cmd}", {})
        return (
            f"  {cmd:<7} calls={calls.get('calls', 0):<6} usec/call={calls.get('usec_per_call', 0):<8} "
            f"p50={lat.get('p50', 0)} us  p99={lat.get('p99', 0)} us  p99.9={lat.get('p99.9', 0)} us"
        )

    return [
        f"seeded {keys:,} matching + {keys // 10:,} other keys in {seeded_s:.1f} s",
        f"cache.clear deleted {deleted:,} keys in {elapsed:.2f} s = {deleted / elapsed:,.0f} keys/s "
        f"(batch {batch}); {left:,} keys left (the others + the ledger entry)",
        latency_summary("PING idle (baseline)", baseline),
        latency_summary("PING during clear", during),
        "Redis per-command latency (INFO latencystats / commandstats):",
        server("scan"),
        server("unlink"),
        server("ping"),
        f"Redis events > 5 ms (LATENCY LATEST, event=max ms): idle baseline {spikes(idle_events)}; "
        f"during clear {spikes(events)}",
        f"load average at the end: {' '.join(f'{x:.1f}' for x in os.getloadavg())} "
        f"on {os.cpu_count()} CPUs",
    ]


async def reload_times(api: Any, ns: str, actions: Mapping[str, Any], runs: int) -> list[float]:
    """model.reload on the Deployment's (kwok) pods, each answered by an HTTP server on its IP."""
    from kubernetes_asyncio import client as k8s

    from responder.actions.params import ModelReloadParams

    core = k8s.CoreV1Api(api)
    await core.create_namespaced_service(
        ns,
        {
            "metadata": {"name": "web"},
            "spec": {"selector": {"app": "web"}, "ports": [{"port": 80}]},
        },
    )
    ips: list[str] = []
    for _ in range(300):  # kwok makes the pods Ready within a second or two
        pods = await core.list_namespaced_pod(ns, label_selector="app=web")
        ips = [p.status.pod_ip for p in pods.items if p.status.pod_ip]
        if len(ips) == 2:
            break
        await asyncio.sleep(0.1)
    port = free_port(ips[0])

    async def ok(_: web.Request) -> web.Response:
        return web.json_response({"ok": True})

    runners = []
    for ip in ips:
        app = web.Application()
        app.router.add_post("/reload", ok)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        await web.TCPSite(runner, ip, port).start()
        runners.append(runner)
    try:
        params = ModelReloadParams(port=port)
        return await timed(
            runs,
            lambda: actions["model.reload"].run(ctx(), Target(namespace=ns, name="web"), params),
        )
    finally:
        for runner in runners:
            await runner.cleanup()


async def per_action_kube(runs: int) -> list[str]:
    from kubernetes_asyncio import client as k8s
    from kubernetes_asyncio.config import new_client_from_config

    from responder.actions.params import (
        DeploymentRestartParams,
        DeploymentRollbackParams,
        DeploymentScaleParams,
        RegionFailbackParams,
        RegionFailoverParams,
    )
    from responder.actions.registry import ActionDeps, build_actions
    from responder_dev.stack.kube import KubeControlPlane, KubeOptions, KubePorts

    out = []
    with tempfile.TemporaryDirectory() as home:
        plane = KubeControlPlane(Path(home), KubeOptions(ports=KubePorts.free(), nodes=1))
        t0 = time.perf_counter()
        plane.start()
        out.append(f"control plane ready in {time.perf_counter() - t0:.1f} s")
        try:
            api = await new_client_from_config(config_file=str(plane.admin_kubeconfig))
            ns = "bench"
            await k8s.CoreV1Api(api).create_namespace({"metadata": {"name": ns}})
            labels = {"app": "web"}
            await k8s.AppsV1Api(api).create_namespaced_deployment(
                ns,
                {
                    "metadata": {"name": "web"},
                    "spec": {
                        "replicas": 2,
                        "selector": {"matchLabels": labels},
                        "template": {
                            "metadata": {"labels": labels},
                            "spec": {
                                "containers": [{"name": "web", "image": "registry.invalid/web:1"}]
                            },
                        },
                    },
                },
            )
            await k8s.CustomObjectsApi(api).create_namespaced_custom_object(
                "gateway.networking.k8s.io",
                "v1",
                ns,
                "httproutes",
                {
                    "apiVersion": "gateway.networking.k8s.io/v1",
                    "kind": "HTTPRoute",
                    "metadata": {"name": "api"},
                    "spec": {
                        "rules": [
                            {
                                "backendRefs": [
                                    {"name": "a", "port": 80, "weight": 100},
                                    {"name": "b", "port": 80, "weight": 0},
                                ]
                            }
                        ]
                    },
                },
            )
            settings = ActionsSettings(
                allowed_namespaces=[ns], max_replicas=4, rollout_poll_s=0.1, endpoint_source="pods"
            )
            deps = ActionDeps.build(settings, api)
            actions = build_actions(deps)
            target = Target(namespace=ns, name="web")
            out.append(line("model.reload (2 pods)", await reload_times(api, ns, actions, runs)))
            out.append(
                line(
                    "deployment.restart",
                    await timed(
                        runs,
                        lambda: actions["deployment.restart"].run(
                            ctx(), target, DeploymentRestartParams(wait=False)
                        ),
                    ),
                )
            )
            out.append(
                line(
                    "deployment.restart+wait",
                    await timed(
                        max(3, runs // 4),
                        lambda: actions["deployment.restart"].run(
                            ctx(), target, DeploymentRestartParams(wait=True)
                        ),
                    ),
                )
            )
            flip = iter(range(10**6))
            out.append(
                line(
                    "deployment.scale",
                    await timed(
                        runs,
                        lambda: actions["deployment.scale"].run(
                            ctx(), target, DeploymentScaleParams(replicas=1 + next(flip) % 2)
                        ),
                    ),
                )
            )
            over = RegionFailoverParams.model_validate(
                {"httproute": {"name": "api", "primary": "a", "backup": "b"}}
            )
            back = RegionFailbackParams.model_validate({"httproute": {"name": "api"}})
            fo: list[float] = []
            fb: list[float] = []
            for _ in range(runs):
                fo += await timed(1, lambda: actions["region.failover"].run(ctx(), target, over))
                fb += await timed(1, lambda: actions["region.failback"].run(ctx(), target, back))
            out.append(
                line(
                    "deployment.rollback+wait",
                    await timed(
                        runs,
                        lambda: actions["deployment.rollback"].run(
                            ctx(), target, DeploymentRollbackParams(wait=True)
                        ),
                    ),
                )
            )
            out.append(line("region.failover", fo))
            out.append(line("region.failback", fb))
            await deps.close()
            await api.close()
        finally:
            plane.stop()
    return out


async def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--keys", type=int, default=1_000_000)
    parser.add_argument("--batch", type=int, default=500)
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--kube", action="store_true", help="also time the Kubernetes actions")
    args = parser.parse_args()
    configure(json=False, level="WARNING")  # the figures, not one log line per action
    with tempfile.TemporaryDirectory() as home:
        server = Redis(Path(home), port=free_port())
        server.start()
        try:
            settings = ActionsSettings(
                allowed_namespaces=["bench"], redis_urls={"default": server.url}
            )
            print("# per action, time to complete (local servers)")
            for row in await per_action_redis_http(settings, args.runs):
                print(row)
            if args.kube:
                for row in await per_action_kube(args.runs):
                    print(row)
            print(f"# cache.clear on {args.keys:,} keys")
            for row in await clear_million(server.url, server.port, args.keys, args.batch):
                print(row)
        finally:
            server.stop()


if __name__ == "__main__":
    asyncio.run(main())
