"""A pytest plugin: the run fails unless the real-Ganeti leg ran and passed.

``scripts/run-tests`` (``make test``) loads it with ``-p tests.ganeti_leg``.
Every test marked ``ganeti`` (it needs the real Ganeti sandbox) must have
run and passed: a skipped, xfailed or failed one fails the run, and so does
a run with fewer than ``--ganeti-leg-min`` of them (a ``-m``/``-k``/env
variable that quietly deselects the leg). Works with pytest-xdist: the
controller sees every worker's reports.
"""

from __future__ import annotations

from collections import Counter

import pytest

#: How many ``ganeti`` tests a full ``make test`` runs at least (81 in December 2026).
DEFAULT_MIN = 78


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("ganeti-leg")
    group.addoption(
        "--ganeti-leg-min",
        type=int,
        default=DEFAULT_MIN,
        help=f"fail unless at least this many tests marked ganeti passed (default {DEFAULT_MIN})",
    )


class GanetiLeg:
    def __init__(self, config: pytest.Config) -> None:
        self.config = config
        self.minimum: int = config.getoption("ganeti_leg_min")
        #: nodeid -> the worst outcome seen over setup/call/teardown
        self.outcomes: dict[str, str] = {}
        self.problem: str | None = None

    @pytest.hookimpl
    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        if "ganeti" not in report.keywords:
            return
        if report.failed:
            outcome = "failed"
        elif report.skipped:
            outcome = "xfailed" if hasattr(report, "wasxfail") else "skipped"
        elif report.when == "call":
            outcome = "xpassed" if hasattr(report, "wasxfail") else "passed"
        else:
            return
        previous = self.outcomes.get(report.nodeid)
        if previous is None or previous == "passed":
            self.outcomes[report.nodeid] = outcome

    @pytest.hookimpl(tryfirst=True)
    def pytest_sessionfinish(self, session: pytest.Session, exitstatus: int) -> None:
        counts = Counter(self.outcomes.values())
        passed = counts["passed"]
        bad = {o: n for o, n in counts.items() if o != "passed"}
        reasons = []
        if bad:
            reasons.append(", ".join(f"{n} {o}" for o, n in sorted(bad.items())))
        if passed < self.minimum:
            reasons.append(f"only {passed} passed, at least {self.minimum} must")
        if reasons:
            self.problem = (
                f"the real-Ganeti leg did not run and pass: {'; '.join(reasons)} "
                "(in make test every test marked ganeti must run and pass, none skipped)"
            )
            if session.exitstatus == 0:
                session.exitstatus = pytest.ExitCode.TESTS_FAILED
        else:
            self.problem = None
        self.summary = f"real-Ganeti leg: {passed} tests marked ganeti passed" + (
            f", {', '.join(f'{n} {o}' for o, n in sorted(bad.items()))}" if bad else ""
        )

    @pytest.hookimpl
    def pytest_terminal_summary(self, terminalreporter: pytest.TerminalReporter) -> None:
        terminalreporter.section("real-Ganeti leg")
        terminalreporter.write_line(getattr(self, "summary", "no summary"))
        if self.problem:
            terminalreporter.write_line(f"FAILED: {self.problem}", red=True, bold=True)


def pytest_configure(config: pytest.Config) -> None:
    if hasattr(config, "workerinput"):  # an xdist worker: the controller counts
        return
    config.pluginmanager.register(GanetiLeg(config), "ganeti-leg-check")
