"""Local stand-ins for the hosted APIs we cannot reach from here (Slack, PagerDuty).

Each is a real HTTP server on 127.0.0.1 that checks requests the way the published
API documents them and answers the way it does, so the real SDKs are tested
against them unmodified. They record every request for assertions. The tests and the demo
(``responder demo`` pages through them) share them from here.
"""
