"""Alerts matched per second against 500 runbooks on one core (issue 3's figure; aim ≥ 20,000/s).

What it does, in one process pinned to one CPU:
1. writes 500 generated runbooks as YAML into a temporary directory and loads them with the
   real loader (all checks, including the whole-set never-match / tie analysis): load time;
2. generates alerts (80 % that some runbook matches, 20 % that none does);
3. measures, on the same alerts and the same set:
   - ``Matcher.match`` (the indexed matcher triage uses),
   - ``resolve`` (match + target templating + RFC 1123 checks + incident key),
   - a naive baseline: every runbook in precedence order, every condition evaluated
     (what the matcher would cost without its alertname index);
   throughput (alerts/s, best of several rounds), per-call p50/p99, and the ratio to the baseline;
4. prints the figures and the peak RSS.

Run: ``.venv/bin/python bench/match_bench.py [--runbooks 500] [--alerts 50000]``
"""

from __future__ import annotations

import argparse
import os
import random
import resource
import statistics
import tempfile
import time
from collections.abc import Callable, Mapping
from pathlib import Path

from responder.runbooks.catalog import RunbookSet
from responder.runbooks.loader import load_directory
from responder.runbooks.matcher import condition_holds, rank_key
from responder.runbooks.resolve import resolve
from responder.runbooks.schema import Runbook

SEVERITIES = ["info", "warning", "critical"]


def runbook_yaml(index: int, rng: random.Random, alertnames: int) -> str:
    """One runbook; a unique ``runbook_key`` keeps every pair disjoint, so the set is valid."""
    kind = index % 10
    if kind < 8:
        alertname = f"alertname: Alert{rng.randrange(alertnames)}"
    elif kind == 8:
        names = ", ".join(f"Alert{rng.randrange(alertnames)}" for _ in range(3))
        alertname = f"alertname: [{names}]"
    else:
        alertname = f'alertname: {{regex: "Alert{rng.randrange(10)}[0-9]*"}}'
    extra = []
    if rng.random() < 0.6:
        extra.append(f"  severity: [{', '.join(rng.sample(SEVERITIES, 2))}]")
    if rng.random() < 0.4:
        extra.append('  service: {regex: "svc-[a-z]+-[0-9]+"}')
    if rng.random() < 0.5:
        extra.append("  engine: {present: true}")
    if rng.random() < 0.2:
        extra.append("  maintenance: {absent: true}")
    lines = "\n".join(extra)
    return f"""apiVersion: responder/v1
id: rb_{index:04d}
priority: {rng.randrange(5)}
match:
  {alertname}
  runbook_key: rk{index}
{lines}
target:
  namespace: "{{{{ labels.namespace }}}}"
  name: "{{{{ labels.engine }}}}-engine"
steps:
  - action: deployment.restart
    verify:
      promql: 'up{{namespace="{{{{ labels.namespace }}}}", engine="{{{{ labels.engine }}}}"}} == 1'
      within: 1m
escalation:
  after: 5m
  chain:
    - notify: slack
      channel: "#incidents"
"""


def alert_for(runbook: Runbook, rng: random.Random) -> dict[str, str]:
    """Labels that ``runbook`` matches (its alertname, key, severity, service, engine)."""
    from responder.runbooks.schema import Equals, OneOf, Regex

    labels = {"namespace": "musearoo", "engine": "melody", "team": "musearoo"}
    for label, condition in runbook.match.items():
        if isinstance(condition, Equals):
            labels[label] = condition.value
        elif isinstance(condition, OneOf):
            labels[label] = sorted(condition.values)[0]
        elif isinstance(condition, Regex):
            labels[label] = (
                condition.pattern.split("[")[0] + "7"
                if label == "alertname"
                else f"svc-api-{rng.randrange(100)}"
            )
    labels.setdefault("severity", rng.choice(SEVERITIES))
    return labels


def naive_match(runbooks: tuple[Runbook, ...], labels: Mapping[str, str]) -> Runbook | None:
    for runbook in runbooks:
        if all(
            condition_holds(condition, labels.get(label, ""))
            for label, condition in runbook.match.items()
        ):
            return runbook
    return None


def throughput(
    call: Callable[[Mapping[str, str]], object], alerts: list[dict[str, str]], rounds: int
) -> float:
    best = float("inf")
    for _ in range(rounds):
        started = time.perf_counter()
        for labels in alerts:
            call(labels)
        best = min(best, time.perf_counter() - started)
    return len(alerts) / best


def latencies(
    call: Callable[[Mapping[str, str]], object], alerts: list[dict[str, str]]
) -> tuple[float, float]:
    clock = time.perf_counter_ns
    samples = []
    for labels in alerts:
        started = clock()
        call(labels)
        samples.append(clock() - started)
    cuts = statistics.quantiles(samples, n=100)
    return cuts[49] / 1000, cuts[98] / 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runbooks", type=int, default=500)
    parser.add_argument("--alerts", type=int, default=50_000)
    parser.add_argument("--alertnames", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()

    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})  # one core
    rng = random.Random(args.seed)

    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp)
        for index in range(args.runbooks):
            (directory / f"rb_{index:04d}.yaml").write_text(
                runbook_yaml(index, rng, args.alertnames)
            )
        started = time.perf_counter()
        result = load_directory(directory)
        load_s = time.perf_counter() - started
    if result.runbooks is None:
        raise SystemExit("\n".join(str(error) for error in result.errors[:20]))
    runbooks: RunbookSet = result.runbooks
    ordered = tuple(sorted(runbooks.runbooks, key=rank_key))

    alerts: list[dict[str, str]] = []
    for _ in range(args.alerts):
        if rng.random() < 0.8:
            alerts.append(alert_for(rng.choice(ordered), rng))
        else:
            alerts.append(
                {
                    "alertname": f"Alert{rng.randrange(args.alertnames * 2)}",
                    "runbook_key": "none",
                    "severity": "critical",
                    "namespace": "musearoo",
                }
            )

    matcher = runbooks.matcher
    agree = sum(matcher.match(a) is naive_match(ordered, a) for a in alerts[:5000])
    matched = sum(matcher.match(a) is not None for a in alerts)

    def do_resolve(labels: Mapping[str, str]) -> object:
        return resolve(labels, {}, runbooks)

    def do_naive(labels: Mapping[str, str]) -> object:
        return naive_match(ordered, labels)

    match_rate = throughput(matcher.match, alerts, args.rounds)
    resolve_rate = throughput(do_resolve, alerts, args.rounds)
    naive_alerts = alerts[: max(1000, len(alerts) // 10)]
    naive_rate = throughput(do_naive, naive_alerts, max(1, args.rounds // 2))
    match_p50, match_p99 = latencies(matcher.match, alerts)
    resolve_p50, resolve_p99 = latencies(do_resolve, alerts)
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

    print(f"runbooks: {len(runbooks)} (loaded and checked from YAML in {load_s:.2f} s)")
    print(
        f"alerts: {len(alerts)} ({matched / len(alerts):.0%} match a runbook); "
        f"indexed matcher agrees with naive scan on {agree}/5000"
    )
    print("one core, best of rounds:")
    print(
        f"  Matcher.match : {match_rate:>10,.0f} alerts/s   p50 {match_p50:6.1f} us   p99 {match_p99:6.1f} us"
    )
    print(
        f"  resolve()     : {resolve_rate:>10,.0f} alerts/s   p50 {resolve_p50:6.1f} us   p99 {resolve_p99:6.1f} us"
    )
    print(f"  naive scan    : {naive_rate:>10,.0f} alerts/s   (baseline, same set)")
    print(f"  matcher / naive: {match_rate / naive_rate:.1f}x")
    print(f"peak RSS: {rss_mb:.0f} MB")


if __name__ == "__main__":
    main()
