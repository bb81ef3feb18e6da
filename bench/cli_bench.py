"""``responder`` start-up time: this tree against a baseline commit, measured in the same run.

    .venv/bin/python bench/cli_bench.py                      # 15 runs each, baseline HEAD~1
    .venv/bin/python bench/cli_bench.py --runs 30 --base 3721e5c

Every CLI invocation (``--help``, ``runbooks validate`` in CI, ``incidents list`` on call)
pays for the imports of every subcommand module, because ``responder/cli/__init__.py``
registers them all. The baseline is the ``responder`` package of ``--base`` exported with
``git archive`` into a temporary folder and put first on ``PYTHONPATH``; the runs of the
two trees alternate so both see the same machine load. Also reports the floor: a bare
``python -c pass`` with this venv.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


# Runs start in an empty folder: with ``-c`` Python puts the working directory first on
# sys.path, which would shadow PYTHONPATH.
NEUTRAL = tempfile.mkdtemp(prefix="cli-bench-cwd-")


def timed(argv: list[str], env: dict[str, str]) -> float:
    began = time.perf_counter()
    subprocess.run(argv, env=env, check=True, stdout=subprocess.DEVNULL, cwd=NEUTRAL)
    return time.perf_counter() - began


def export(rev: str, into: Path) -> None:
    archive = into / "base.tar"
    with archive.open("wb") as out:
        subprocess.run(["git", "archive", rev, "responder"], cwd=ROOT, stdout=out, check=True)
    with tarfile.open(archive) as tar:
        tar.extractall(into, filter="data")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--base", default="HEAD~1", help="Commit to compare against.")
    args = parser.parse_args()
    help_cmd = [sys.executable, "-c", "from responder.cli import main; main(['--help'])"]
    with tempfile.TemporaryDirectory() as tmp:
        export(args.base, Path(tmp))
        trees = {"this tree": str(ROOT), f"base {args.base}": tmp}
        envs = {name: {**os.environ, "PYTHONPATH": path} for name, path in trees.items()}
        for name, env in envs.items():  # prove each run imports the tree it names
            where = subprocess.run(
                [sys.executable, "-c", "import responder; print(responder.__file__)"],
                env=env,
                cwd=NEUTRAL,
                check=True,
                capture_output=True,
                text=True,
            ).stdout.strip()
            assert where.startswith(trees[name]), (name, where)
        samples: dict[str, list[float]] = {name: [] for name in envs}
        samples["python -c pass"] = []
        for _ in range(args.runs):
            for name, env in envs.items():
                samples[name].append(timed(help_cmd, env))
            samples["python -c pass"].append(
                timed([sys.executable, "-c", "pass"], dict(os.environ))
            )
    base_p50 = pct(samples[f"base {args.base}"], 0.5)
    report = {
        name: {
            "p50_s": round(pct(values, 0.5), 3),
            "p90_s": round(pct(values, 0.9), 3),
            "min_s": round(min(values), 3),
            "vs_base_p50": round(pct(values, 0.5) / base_p50, 2),
        }
        for name, values in samples.items()
    }
    print(json.dumps({"command": "responder --help", "runs": args.runs, **report}, indent=2))
    os.rmdir(NEUTRAL)


if __name__ == "__main__":
    main()
