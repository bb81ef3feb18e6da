"""Verification: did a remediation step work? One check kind per module, one polling loop.

The engine says *what* to check and until when (``StartVerify``); ``streams`` maps that to a
``VerifySpec`` and runs ``Verifier.verify`` in a task. Everything here is domain code with
no Kafka in it, and time comes from an injected clock, so the loop is tested with a fake
clock and the checks against real servers.
"""

from responder.verification.base import Check, Checker, Verdict, VerifySpec
from responder.verification.http import HTTPChecker, HTTPGet
from responder.verification.probe import (
    GenerationProbe,
    PodURLs,
    ProbeChecker,
    ProbeReading,
    ProbeVerdict,
)
from responder.verification.promql import PromQL, PromQLChecker
from responder.verification.verifier import Verifier

__all__ = [
    "Check",
    "Checker",
    "GenerationProbe",
    "HTTPChecker",
    "HTTPGet",
    "PodURLs",
    "ProbeChecker",
    "ProbeReading",
    "ProbeVerdict",
    "PromQL",
    "PromQLChecker",
    "Verdict",
    "Verifier",
    "VerifySpec",
]
