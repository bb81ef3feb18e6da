"""``responder demo``: the responder heals a real (simulated) service, live on the local stack.

The stack's real servers (Kafka, Redis, Prometheus, Alertmanager, the Kubernetes control
plane) run as ``responder stack up`` starts them; the demo adds the engine simulator
(``responder_dev.demo.simulator``), ingest and a worker as in production, the local Slack
and PagerDuty (``responder_dev.fakes``), and its own Prometheus rules and runbooks
(``rules.yml``, ``runbooks/`` beside this file) with intervals of seconds. Then three
faults, one after the other, each cleared only by a real change:

1. a poisoned cache (keys in Redis): ``cache.clear`` fixes it, a PromQL verification sees
   the latency back under 200 ms;
2. a stuck model: clearing the cache fails its verification, the rolling restart replaces
   the pods in the apiserver and the health score comes back;
3. a hard fault: the steps are exhausted, Slack and PagerDuty are paged, a signed Slack
   "Acknowledge" press stops the chain, and a person fixing the fault resolves everything.

What happens is printed as a timeline relative to each fault, read from Prometheus'
alert states, the ``responder.alerts`` and ``responder.audit`` topics, and what the local
Slack and PagerDuty received; a summary table closes it.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import sys
import time
from collections.abc import Awaitable, Callable, Mapping
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import click
from pydantic import SecretStr

from responder.errors import ResponderError, TemporaryError
from responder.integrations.slack.blocks import ACTION_ACK
from responder.models.topics import ALERTS, AUDIT, topic_name
from responder.settings import (
    ChatOpsAllowList,
    NotifySettings,
    PagerDutySettings,
    SlackSettings,
)
from responder_dev.demo.simulator import deployment_name, poison_prefix
from responder_dev.settings import DevSettings, settings_env

HERE = Path(__file__).resolve().parent
RULES = HERE / "rules.yml"
RUNBOOKS = HERE / "runbooks"
NAMESPACE = "musearoo"
BOT_TOKEN = "xoxb-4242424242-4242424242-DemoBotToken"  # noqa: S105 - the local Slack's
SIGNING_SECRET = "demo-slack-signing-secret-0123456789"  # noqa: S105 - local test servers only
ONCALL_KEY = "DEM0ONCALLR0UT1NGKEYDEM0ONCALL32"
DEFAULT_KEY = "DEM0DEFAULTR0UT1NGKEYDEM0DEFAULT"
ACKER = "U0DEMOALICE"
POISONED_KEYS = 50


class DemoFailed(ResponderError):
    """A scenario did not go as the demo says it goes (``--ci`` turns this into exit 1)."""


@dataclass(frozen=True)
class Scenario:
    number: int
    title: str
    engine: str
    alertname: str
    runbook: str
    metric: str
    """The PromQL the timeline watches; ``threshold`` tells when it is over."""
    over: Callable[[float], bool]
    threshold: str


SCENARIOS = (
    Scenario(
        1,
        "cache fault: poisoned generation cache",
        "melody",
        "HighGenerationLatency",
        "demo_generation_latency",
        'histogram_quantile(0.95, sum by (le) (rate(musearoo_generation_latency_seconds_bucket{engine="melody"}[10s])))',
        lambda v: v > 0.2,
        "p95 > 0.2 s",
    ),
    Scenario(
        2,
        "stuck model: confidence below 0.7 until the pods are replaced",
        "harmony",
        "EngineHealthLow",
        "demo_engine_health",
        'min(musearoo_engine_health_score{engine="harmony"})',
        lambda v: v < 0.7,
        "health < 0.7",
    ),
    Scenario(
        3,
        "hard fault: nothing in the runbook fixes it",
        "rhythm",
        "GenerationFailing",
        "demo_generation_failing",
        'sum(rate(musearoo_session_errors_total{engine="rhythm"}[10s]))',
        lambda v: v > 1,
        "errors > 1/s",
    ),
)


@dataclass
class Entry:
    at_s: float
    what: str
    data: dict[str, Any] = field(default_factory=dict)


@dataclass
class Timeline:
    """One scenario's events, with times relative to the fault; printed as they come."""

    scenario: Scenario
    emit: Callable[[dict[str, Any]], None]
    t0: float = 0.0
    entries: list[Entry] = field(default_factory=list)
    incident_id: str = ""
    actions: list[str] = field(default_factory=list)
    first_action_s: float | None = None
    recovered_s: float | None = None
    outcome: str = ""
    verifications: list[dict[str, Any]] = field(default_factory=list)

    def mark(self, what: str, **data: Any) -> None:
        entry = Entry(round(time.monotonic() - self.t0, 1), what, data)
        self.entries.append(entry)
        self.emit({"scenario": self.scenario.number, "t_s": entry.at_s, "event": what} | data)


class Children:
    """Processes the demo starts, each logging to a file, stopped with SIGTERM on exit."""

    def __init__(self, logs: Path, env: Mapping[str, str]) -> None:
        self.logs, self.env = logs, dict(env)
        self.processes: dict[str, asyncio.subprocess.Process] = {}

    async def start(self, name: str, argv: list[str]) -> None:
        log_path = self.logs / f"{name}.log"
        with log_path.open("wb") as log:
            self.processes[name] = await asyncio.create_subprocess_exec(
                sys.executable,
                *argv,
                env=self.env,
                stdout=log,
                stderr=log,
                stdin=asyncio.subprocess.DEVNULL,
                start_new_session=True,  # Ctrl-C reaches the demo, which stops them in order
            )

    def check_running(self) -> None:
        for name, process in self.processes.items():
            if process.returncode is not None:
                tail = (self.logs / f"{name}.log").read_text(errors="replace").splitlines()[-15:]
                raise TemporaryError(
                    f"{name} exited with {process.returncode}:\n" + "\n".join(tail)
                )

    async def stop(self) -> None:
        for process in reversed(list(self.processes.values())):
            if process.returncode is None:
                process.terminate()
        for process in self.processes.values():
            try:
                await asyncio.wait_for(process.wait(), timeout=20)
            except TimeoutError:
                process.kill()
                await process.wait()


def _value(detail: str) -> float | None:
    """The value a PromQL verdict names (``… {labels} 0.087``)."""
    found = re.search(r"\} (-?[0-9.eE+-]+|NaN)", detail)
    if found is None:
        return None
    try:
        return float(found.group(1))
    except ValueError:
        return None


class Demo:
    """One run; every wait is bounded by ``timeout_s``."""

    def __init__(
        self,
        settings: DevSettings,
        *,
        timeout_s: float,
        json_out: bool,
        ci: bool,
        down: bool,
        out: Callable[[str], None] = click.echo,
    ) -> None:
        self.settings = settings
        self.timeout_s = timeout_s
        self.json_out, self.ci, self.down = json_out, ci, down
        self.out = out
        self.root = Path(settings.stack.root_dir).resolve()
        self.logs = self.root / "demo"
        self.timelines: list[Timeline] = []
        self.records: list[dict[str, Any]] = []
        self.http: aiohttp.ClientSession
        self.children: Children
        self.engines: dict[str, str] = {}

    # --- output ---------------------------------------------------------------------------------

    def say(self, message: str) -> None:
        """Progress, for a person (stderr): never mixed into ``--json`` output."""
        click.echo(message, err=True)

    def emit(self, record: dict[str, Any]) -> None:
        if self.json_out:
            self.out(json.dumps(record, default=str))
            return
        if "event" in record:
            self.out(f"  +{record['t_s']:6.1f}s  {record['event']}")

    # --- set-up ---------------------------------------------------------------------------------

    async def run(self) -> None:
        from responder_dev.stack.stack import Stack

        stack = Stack.from_settings(self.settings)
        self.say("== starting the local stack (Kafka, Redis, Alertmanager, Prometheus, Kubernetes)")
        await stack.up_async(self.say)
        up_at = time.monotonic()
        try:
            async with AsyncExitStack() as exits:
                await self._set_up(stack, exits)
                for scenario in SCENARIOS:
                    await self._play(scenario)
            total = time.monotonic() - up_at
            self._summary(total)
            if self.ci:
                self._check()
        finally:
            if self.down:
                self.say("== stopping the stack (--down)")
                await stack.down_async(self.say)

    async def _set_up(self, stack: Any, exits: AsyncExitStack) -> None:
        from responder_dev.fakes.http import self_signed_cert
        from responder_dev.fakes.pagerduty_events import FakePagerDuty
        from responder_dev.fakes.slack_api import FakeSlack
        from responder_dev.stack.process import free_ports
        from responder_dev.stack.stack import webhook_token

        self.logs.mkdir(parents=True, exist_ok=True)
        self.http = await exits.enter_async_context(
            aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10), trust_env=False)
        )
        self.slack = FakeSlack(token=BOT_TOKEN)
        await self.slack.start()
        exits.push_async_callback(self.slack.stop)
        cert, key = await asyncio.to_thread(self_signed_cert, self.logs)
        self.pd = FakePagerDuty(cert=cert, key=key, routing_keys={DEFAULT_KEY, ONCALL_KEY})
        await self.pd.start()
        exits.push_async_callback(self.pd.stop)
        self.say(f"== local Slack at {self.slack.url}, PagerDuty Events API at {self.pd.url}")

        kube = stack.get("kube")
        await self._deployments(Path(kube.admin_kubeconfig))
        ports = free_ports(len(SCENARIOS))
        self.engines = {
            s.engine: f"http://127.0.0.1:{port}" for s, port in zip(SCENARIOS, ports, strict=True)
        }
        token = await asyncio.to_thread(webhook_token, self.settings, self.root)
        env = self._env(token, Path(kube.responder_kubeconfig), cert)
        self.children = Children(self.logs, env)
        exits.push_async_callback(self.children.stop)
        s = self.settings.stack
        await self.children.start(
            "simulator",
            [
                "-m",
                "responder_dev.demo.simulator",
                "--namespace",
                NAMESPACE,
                "--redis-url",
                f"redis://127.0.0.1:{s.redis_port}/0",
                "--kubeconfig",
                str(kube.admin_kubeconfig),
                *[f"--engine={e}={u.rsplit(':', 1)[1]}" for e, u in self.engines.items()],
            ],
        )
        await self.children.start("ingest", ["-m", "responder.cli", "serve"])
        await self.children.start("worker", ["-m", "responder.cli", "worker"])
        self.say(f"== started the engine simulator, ingest and a worker (logs in {self.logs})")
        await self._configure_monitoring(stack, token, exits)
        await self._reset_faults()
        await self._consume(exits)
        await self._wait_healthy()

    async def _deployments(self, admin: Path) -> None:
        """Each engine's Deployment (2 replicas), created as an operator would."""
        from kubernetes_asyncio import client, config

        api = await config.new_client_from_config(config_file=str(admin))
        async with api:
            apps = client.AppsV1Api(api)
            for scenario in SCENARIOS:
                name = deployment_name(scenario.engine)
                labels = {"app": name}
                body: Any = {
                    "apiVersion": "apps/v1",
                    "kind": "Deployment",
                    "metadata": {"name": name, "namespace": NAMESPACE, "labels": labels},
                    "spec": {
                        "replicas": 2,
                        "selector": {"matchLabels": labels},
                        "template": {
                            "metadata": {"labels": labels},
                            "spec": {
                                "containers": [{"name": "engine", "image": "musearoo/engine"}]
                            },
                        },
                    },
                }
                try:
                    await apps.create_namespaced_deployment(NAMESPACE, body)
                except client.ApiException as exc:
                    if exc.status != 409:
                        raise
        self.say(f"== deployments {', '.join(deployment_name(s.engine) for s in SCENARIOS)}")

    def _env(self, token: str, kubeconfig: Path, ca_file: Path) -> dict[str, str]:
        s = self.settings.stack
        configured = self.settings.model_copy(
            update={
                "slack": SlackSettings(
                    enabled=True,
                    bot_token=SecretStr(BOT_TOKEN),
                    signing_secret=SecretStr(SIGNING_SECRET),
                    base_url=self.slack.url + "/api/",
                    default_channel="#incidents",
                    allow=ChatOpsAllowList(users=frozenset({ACKER})),
                    response_url_hosts=frozenset({"127.0.0.1"}),
                    response_url_require_https=False,
                ),
                "pagerduty": PagerDutySettings(
                    enabled=True,
                    events_url=self.pd.url,
                    ca_file=str(ca_file),
                    trust_env=False,
                    routing_keys={
                        "default": SecretStr(DEFAULT_KEY),
                        "musearoo-oncall": SecretStr(ONCALL_KEY),
                    },
                ),
                "notify": NotifySettings(retry_budget_s=20.0, retry_max_delay_s=2.0),
            }
        )
        env = dict(os.environ) | settings_env(configured, ("slack", "pagerduty", "notify"))
        env.update(
            {
                "RESPONDER_KAFKA__BOOTSTRAP": f"127.0.0.1:{s.kafka_port}",
                "RESPONDER_INGEST__BEARER_TOKEN": token,
                "RESPONDER_ACTIONS__REDIS_URLS": json.dumps(
                    {"default": f"redis://127.0.0.1:{s.redis_port}/0"}
                ),
                "RESPONDER_ACTIONS__ALLOWED_NAMESPACES": json.dumps([NAMESPACE]),
                "RESPONDER_REMEDIATION__PROMETHEUS_URL": f"http://127.0.0.1:{s.prometheus_port}",
                "RESPONDER_REMEDIATION__RUNBOOKS_DIR": str(RUNBOOKS),
                "RESPONDER_REMEDIATION__DRY_RUN": "false",
                "RESPONDER_WORKER__DATA_DIR": str(self.root / "worker"),
                "KUBECONFIG": str(kubeconfig),
            }
        )
        return env

    async def _configure_monitoring(self, stack: Any, token: str, exits: AsyncExitStack) -> None:
        """The demo's config on the stack's Prometheus and Alertmanager; theirs again on exit."""
        from responder_dev.stack.prometheus import INGEST_JOB
        from responder_dev.stack.stack import ingest_address, ingest_webhook_url

        prometheus, alertmanager = stack.get("prometheus"), stack.get("alertmanager")
        saved_wiring, saved_route = prometheus.wiring, alertmanager.route
        worker = f"127.0.0.1:{self.settings.worker.web_port}"
        await asyncio.to_thread(
            prometheus.configure,
            scrape_targets={
                INGEST_JOB: [ingest_address(self.settings)],
                "responder-worker": [worker],
                "musearoo-engine": [u.removeprefix("http://") for u in self.engines.values()],
            },
            alertmanager=f"127.0.0.1:{self.settings.stack.alertmanager_port}",
            rule_files=[str(RULES)],
            interval_s=1,
        )
        await asyncio.to_thread(
            alertmanager.configure,
            webhook_url=ingest_webhook_url(self.settings),
            token=token,
            group_by=("alertname", "namespace", "engine"),
            group_wait_s=0,
            group_interval_s=2,
        )

        async def restore() -> None:
            await asyncio.to_thread(
                prometheus.configure,
                scrape_targets=saved_wiring.scrape_targets,
                alertmanager=saved_wiring.alertmanager,
                rule_files=saved_wiring.rule_files,
                interval_s=saved_wiring.interval_s,
            )
            await asyncio.to_thread(
                alertmanager.configure,
                webhook_url=saved_route.webhook_url,
                token=saved_route.token,
                group_by=saved_route.group_by,
                group_wait_s=saved_route.group_wait_s,
                group_interval_s=saved_route.group_interval_s,
            )

        exits.push_async_callback(restore)
        self.prometheus_url = f"http://127.0.0.1:{self.settings.stack.prometheus_port}"
        self.say(
            f"== Prometheus ({self.prometheus_url}) scrapes the engines and the worker every "
            "1 s with the demo's rules; Alertmanager groups per engine, 2 s intervals"
        )

    async def _reset_faults(self) -> None:
        """A rerun starts clean: no poisoned keys left, no hard fault."""
        import redis.asyncio as aioredis

        client = aioredis.Redis(port=self.settings.stack.redis_port)
        try:
            keys = [k async for k in client.scan_iter(match="generation:*:poisoned:*")]
            if keys:
                await client.unlink(*keys)
        finally:
            await client.aclose()

    async def _consume(self, exits: AsyncExitStack) -> None:
        """Read ``responder.audit`` and ``responder.alerts`` from their ends, into ``records``."""
        from aiokafka import AIOKafkaConsumer

        prefix = self.settings.kafka.topic_prefix
        topics = [topic_name(prefix, AUDIT), topic_name(prefix, ALERTS)]
        consumer = AIOKafkaConsumer(
            bootstrap_servers=f"127.0.0.1:{self.settings.stack.kafka_port}",
            auto_offset_reset="latest",
            enable_auto_commit=False,
        )
        await consumer.start()
        exits.push_async_callback(consumer.stop)
        await self._until(lambda: _has_topics(consumer, topics), "the worker created its topics")
        consumer.subscribe(topics)
        await self._until(lambda: _assigned(consumer), "audit partitions assigned")
        for partition in consumer.assignment():
            await consumer.position(partition)

        async def pump() -> None:
            while True:
                batches = await consumer.getmany(timeout_ms=300)
                for records in batches.values():
                    for record in records:
                        value = json.loads(record.value)
                        value["_topic"] = "audit" if record.topic == topics[0] else "alerts"
                        self.records.append(value)

        task = asyncio.create_task(pump())

        async def stop_pump() -> None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

        exits.push_async_callback(stop_pump)

    async def _wait_healthy(self) -> None:
        """Every engine scraped, ingest ready, no demo alert pending or firing."""

        async def ready() -> bool:
            self.children.check_running()
            try:
                up = await self._query('up{job="musearoo-engine"} == 1')
                scraped = {r["metric"].get("instance") for r in up}
                engines = {u.removeprefix("http://") for u in self.engines.values()}
                worker = await self._query('up{job="responder-worker"} == 1')
                alerts = await self._alerts()
                url = f"http://127.0.0.1:{self.settings.ingest.port}/readyz"
                async with self.http.get(url) as response:
                    ingest = response.status == 200
            except (aiohttp.ClientError, TimeoutError):
                return False
            return engines <= scraped and bool(worker) and ingest and not alerts

        await self._until(ready, "the engines healthy and the responder ready")
        self.say("== all engines healthy; the responder is ready\n")

    # --- Prometheus -----------------------------------------------------------------------------

    async def _query(self, promql: str) -> list[Any]:
        async with self.http.get(
            f"{self.prometheus_url}/api/v1/query", params={"query": promql}
        ) as response:
            body = await response.json()
        result: list[Any] = body.get("data", {}).get("result", [])
        return result

    async def _alerts(self) -> dict[tuple[str, str], str]:
        """(alertname, engine) -> pending|firing, for the demo's engines."""
        async with self.http.get(f"{self.prometheus_url}/api/v1/alerts") as response:
            body = await response.json()
        return {
            (a["labels"].get("alertname", ""), a["labels"].get("engine", "")): a["state"]
            for a in body.get("data", {}).get("alerts", [])
            if a["labels"].get("engine") in self.engines
        }

    async def _until(self, check: Callable[[], Awaitable[bool]], what: str) -> None:
        deadline = time.monotonic() + self.timeout_s
        while not await check():
            if time.monotonic() > deadline:
                raise TemporaryError(f"demo: {what}: not within {self.timeout_s:.0f} s")
            await asyncio.sleep(0.25)

    # --- the scenarios --------------------------------------------------------------------------

    async def _inject(self, scenario: Scenario, tl: Timeline) -> None:
        base = self.engines[scenario.engine]
        if scenario.number == 1:
            import redis.asyncio as aioredis

            client = aioredis.Redis(port=self.settings.stack.redis_port)
            try:
                async with client.pipeline(transaction=False) as pipe:
                    for i in range(POISONED_KEYS):
                        pipe.set(f"{poison_prefix(scenario.engine)}{i}", b"stale")
                    await pipe.execute()
            finally:
                await client.aclose()
            tl.mark(
                f"fault: {POISONED_KEYS} poisoned keys {poison_prefix(scenario.engine)}* in Redis"
            )
            return
        kind = "stuck_model" if scenario.number == 2 else "hard"
        async with self.http.post(f"{base}/v1/faults/{kind}") as response:
            seen = await response.json()
            if response.status != 200:
                raise DemoFailed(f"demo: the simulator refused the {kind} fault: {seen}")
        if kind == "stuck_model":
            tl.mark(f"fault: {scenario.engine}'s model stuck in pods {', '.join(seen['pods'])}")
        else:
            tl.mark(f"fault: {scenario.engine}'s generations fail outright (hard fault)")

    async def _play(self, scenario: Scenario) -> None:
        tl = Timeline(scenario, self.emit)
        self.timelines.append(tl)
        if not self.json_out:
            self.out(f"Scenario {scenario.number}: {scenario.title}")
        tl.t0 = time.monotonic()
        start = len(self.records)
        await self._inject(scenario, tl)
        watch = _Watch(self, scenario, tl, start)
        await self._until(watch.step, f"scenario {scenario.number} to end")
        if not self.json_out:
            self.out("")

    # --- the end --------------------------------------------------------------------------------

    def _summary(self, total_s: float) -> None:
        rows = [
            {
                "scenario": tl.scenario.number,
                "incident": tl.incident_id,
                "runbook": tl.scenario.runbook,
                "steps": " -> ".join(tl.actions),
                "outcome": tl.outcome,
                "first_action_s": tl.first_action_s,
                "recovery_s": tl.recovered_s,
            }
            for tl in self.timelines
        ]
        where = {
            "show": "responder incidents show <incident>",
            "worker_metrics": f"http://127.0.0.1:{self.settings.worker.web_port}/metrics",
            "prometheus": self.prometheus_url,
        }
        if self.json_out:
            self.out(json.dumps({"summary": rows, "total_s": round(total_s, 1), "next": where}))
            return
        self.out("Summary")
        head = f"  {'#':<2} {'incident':<37} {'runbook':<24} {'steps':<34} {'outcome':<22} {'first action':>12} {'recovery':>9}"
        self.out(head)
        for r in rows:
            first = "-" if r["first_action_s"] is None else f"{r['first_action_s']:.1f} s"
            rec = "-" if r["recovery_s"] is None else f"{r['recovery_s']:.1f} s"
            self.out(
                f"  {r['scenario']:<2} {r['incident']:<37} {r['runbook']:<24} {r['steps']:<34} "
                f"{r['outcome']:<22} {first:>12} {rec:>9}"
            )
        self.out(f"  demo time after the stack was up: {total_s:.1f} s")
        self.out("")
        self.out("Where to look next")
        first = next((tl.incident_id for tl in self.timelines if tl.incident_id), "<incident>")
        self.out(f"  responder incidents show {first}")
        self.out(f"  responder incidents export {first} --format markdown")
        self.out(f"  the worker's metrics: {where['worker_metrics']}")
        self.out(f"  Prometheus: {self.prometheus_url}/alerts")
        self.out(f"  logs: {self.logs}; the stack keeps running (`responder stack down`)")

    def _check(self) -> None:
        """``--ci``: what the issue promises, asserted from the audit and the local servers."""
        problems: list[str] = []
        want = {1: ["cache.clear"], 2: ["cache.clear", "deployment.restart"], 3: ["cache.clear"]}
        for tl in self.timelines:
            n = tl.scenario.number
            if tl.actions != want[n]:
                problems.append(f"scenario {n}: steps {tl.actions}, expected {want[n]}")
            held = [v for v in tl.verifications if v["ok"]]
            if n in (1, 2):
                if tl.outcome != "verified" or not held:
                    problems.append(f"scenario {n}: ended {tl.outcome!r}, not verified")
                elif held[-1]["value"] is None or tl.scenario.over(held[-1]["value"]):
                    problems.append(f"scenario {n}: the verification saw {held[-1]}")
            if n == 2 and not any(not v["ok"] for v in tl.verifications):
                problems.append("scenario 2: the first step's verification did not fail")
        hard = self.timelines[-1]
        incident = hard.incident_id
        triggers = [
            e
            for e in self.pd.events
            if e.body.get("dedup_key") == incident and e.body.get("event_action") == "trigger"
        ]
        posts = [m for m in self.slack.top_level() if f"({incident})" in m.text]
        if len(triggers) != 1 or len(posts) != 1:
            problems.append(f"scenario 3: {len(triggers)} PagerDuty triggers, {len(posts)} posts")
        if self.pd.alerts.get((ONCALL_KEY, incident)) != "resolved":
            problems.append(
                f"scenario 3: PagerDuty left {self.pd.alerts.get((ONCALL_KEY, incident))}"
            )
        if not any(e.what.startswith("PagerDuty shows acknowledged") for e in hard.entries):
            problems.append("scenario 3: PagerDuty never showed acknowledged")
        if problems:
            raise DemoFailed("demo --ci:\n  " + "\n  ".join(problems))
        self.say("== --ci: every scenario went as it should")


async def _has_topics(consumer: Any, topics: list[str]) -> bool:
    return set(topics) <= set(await consumer.topics())


async def _assigned(consumer: Any) -> bool:
    return bool(consumer.assignment())


class _Watch:
    """Turns what Prometheus, the topics and the local servers say into timeline entries,
    and plays the people's part in scenario 3 (the Acknowledge press, the fix)."""

    def __init__(self, demo: Demo, scenario: Scenario, tl: Timeline, start: int) -> None:
        self.demo, self.scenario, self.tl = demo, scenario, tl
        self.cursor = start
        self.over = False
        self.alert_state = "inactive"
        self.step_actions: dict[int, str] = {}
        self.remediation_done = False
        self.alert_closed = False
        self.pressed = False
        self.paged = False
        self.acked = False
        self.fixed = False
        self.slack_seen = 0
        self.pd_seen = 0

    async def step(self) -> bool:
        self.demo.children.check_running()
        await self._metric()
        await self._alert()
        self._records()
        if self.scenario.number == 3:
            await self._people()
        return self.remediation_done and self.alert_closed

    async def _metric(self) -> None:
        result = await self.demo._query(self.scenario.metric)
        if not result:
            return
        value = float(result[0]["value"][1])
        over = self.scenario.over(value)
        if over != self.over:
            self.over = over
            state = "over" if over else "back under"
            self.tl.mark(
                f"metric {state} threshold ({self.scenario.threshold}): {value:.3g}",
                value=value,
            )

    async def _alert(self) -> None:
        key = (self.scenario.alertname, self.scenario.engine)
        state = (await self.demo._alerts()).get(key, "inactive")
        if state != self.alert_state:
            self.tl.mark(f"Prometheus alert {self.scenario.alertname} {state}")
            self.alert_state = state

    def _records(self) -> None:
        records = self.demo.records
        while self.cursor < len(records):
            record = records[self.cursor]
            self.cursor += 1
            if record["_topic"] == "alerts":
                if record["labels"].get("engine") == self.scenario.engine:
                    self.tl.mark(
                        f"Alertmanager delivered {record['labels'].get('alertname')} "
                        f"({record['status']}) to ingest"
                    )
                continue
            self._audit(record)

    def _audit(self, event: dict[str, Any]) -> None:
        tl, kind, data = self.tl, event["kind"], event.get("data", {})
        if kind == "incident.open" and data.get("labels", {}).get("engine") == self.scenario.engine:
            tl.incident_id = event["incident_id"]
            tl.mark(f"incident {tl.incident_id} opened (key {event['incident_key']})")
            return
        if not tl.incident_id or event["incident_id"] != tl.incident_id:
            return
        step = data.get("step")
        if kind == "remediation.opened":
            tl.mark(f"runbook {data.get('runbook')} takes it; target {event['incident_key']}")
        elif kind == "remediation.action_started":
            self.step_actions[step] = data.get("action", "?")
            tl.actions.append(self.step_actions[step])
            if tl.first_action_s is None:
                tl.first_action_s = round(time.monotonic() - tl.t0, 1)
            tl.mark(f"step {step + 1} {data.get('action')} started")
        elif kind == "remediation.action_finished":
            result = "ok" if data.get("ok") else "failed"
            tl.mark(
                f"step {step + 1} {self.step_actions.get(step, '')} finished: {result}, "
                f"{str(data.get('detail', ''))[:90]}"
            )
        elif kind in ("remediation.verified", "remediation.verify_failed"):
            ok = kind == "remediation.verified"
            detail = str(data.get("detail", ""))
            value = _value(detail)
            tl.verifications.append({"step": step, "ok": ok, "value": value, "detail": detail})
            seen = f"saw {value:.3g}" if value is not None else detail
            tl.mark(f"verification of step {step + 1} {'held' if ok else 'failed'}: {seen}")
        elif kind == "remediation.halted":
            tl.mark(f"automation stops: {data.get('reason')}")
        elif kind == "remediation.escalated":
            tl.mark(f"escalated: level {data.get('level')} ({data.get('notify')})")
        elif kind == "remediation.command":
            tl.mark(f"command {data.get('command')} from {data.get('actor')}")
        elif kind == "remediation.resolved":
            tl.outcome = str(data.get("how", ""))
            tl.recovered_s = round(time.monotonic() - tl.t0, 1)
            self.remediation_done = True
            tl.mark(f"incident resolved ({tl.outcome.replace('_', ' ')})")
        elif kind == "incident.resolved":
            self.alert_closed = True
            tl.mark("alert resolved: the incident's alerts all ended")

    async def _people(self) -> None:
        demo, tl = self.demo, self.tl
        incident = tl.incident_id
        if not incident:
            return
        posts = [m for m in demo.slack.top_level() if f"({incident})" in m.text]
        for message in posts[self.slack_seen :]:
            tl.mark(f"Slack post in {message.channel}: {message.text}")
        self.slack_seen = len(posts)
        events = [e for e in demo.pd.events if e.body.get("dedup_key") == incident]
        for e in events[self.pd_seen :]:
            action = e.body.get("event_action")
            summary = e.body.get("payload", {}).get("summary", "")
            tl.mark(f"PagerDuty {action}" + (f": {summary}" if summary else ""))
            self.paged = self.paged or action == "trigger"
        self.pd_seen = len(events)
        if self.paged and posts and not self.pressed:
            await self._press_ack(posts[0])
        state = demo.pd.alerts.get((ONCALL_KEY, incident))
        if self.pressed and not self.acked and state == "acknowledged":
            self.acked = True
            tl.mark("PagerDuty shows acknowledged; the chain stops")
        if self.acked and not self.fixed:
            base = demo.engines[self.scenario.engine]
            async with demo.http.delete(f"{base}/v1/faults/hard") as response:
                response.raise_for_status()
            self.fixed = True
            tl.mark("a person fixes the engine (the hard fault is cleared)")

    async def _press_ack(self, message: Any) -> None:
        from responder_dev.fakes.slack_requests import block_actions_body, signed_headers

        button = next(
            (
                element
                for block in message.blocks
                for element in block.get("elements", [])
                if isinstance(element, dict) and element.get("action_id") == ACTION_ACK
            ),
            None,
        )
        if button is None:
            return  # the message has no Acknowledge button yet: look again next time
        body = block_actions_body(
            ACTION_ACK,
            button["value"],
            user_id=ACKER,
            trigger_id=f"demo-{time.time_ns()}",
            response_url=self.demo.slack.response_url(),
            ts=message.ts,
        )
        url = f"http://127.0.0.1:{self.demo.settings.ingest.port}/v1/slack/interactions"
        async with self.demo.http.post(
            url, data=body, headers=signed_headers(body, SIGNING_SECRET)
        ) as response:
            status = response.status
        self.pressed = status == 200
        self.tl.mark(f"{ACKER} presses Acknowledge in Slack (signed request): HTTP {status}")


def run_demo(settings: DevSettings, **options: Any) -> None:
    """Run the demo; its errors become one line for the person (``ClickException``)."""
    try:
        asyncio.run(Demo(settings, **options).run())
    except KeyboardInterrupt:
        click.echo(
            "\n== interrupted: what the demo started is stopped; the stack keeps running", err=True
        )
        raise SystemExit(130) from None
    except ResponderError as exc:
        raise click.ClickException(str(exc)) from exc
