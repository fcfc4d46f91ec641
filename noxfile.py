"""Sessions: `tests`, `mutants` and a short `explore` (what CI runs), `gate` (the scenario gate),
`lint`, `bench`, `slow` (the tests marked slow: soaks, shrinking, measured reproduction rates),
`determinism`, `soak`, the ten-minute `explore` and `mutants-explore` (long runs, not in every CI).

Each session installs the project into its own virtualenv and provisions the servers with
`faultline setup` (cached per user, so only the first run downloads anything).
"""

from __future__ import annotations

import nox

nox.options.sessions = ["tests"]
nox.options.reuse_existing_virtualenvs = True


def _install(session: nox.Session) -> None:
    session.install("-e", ".[dev]")
    session.run("faultline", "setup")


@nox.session
def tests(session: nox.Session) -> None:
    """Unit and integration tests against the real servers (slow ones excluded)."""
    _install(session)
    session.run("python", "-m", "pytest", "-m", "not slow", "--durations=15", *session.posargs)


@nox.session
def slow(session: nox.Session) -> None:
    """The long tests (marked slow): soaks, the shrink chain, reproduction rates measured N of N."""
    _install(session)
    session.run("python", "-m", "pytest", "-m", "slow", *session.posargs)
    # The input and API fuzzers, a hundred times longer than in `tests`.
    session.run("python", "-m", "pytest", "tests/unit/test_input_fuzz.py",
                "tests/integration/test_exporter_api_fuzz.py", env={"FAULTLINE_FUZZ_CASES": "3000"})


@nox.session
def gate(session: nox.Session) -> None:
    """The main job: the resilience gate (every scenario) against the bundled exporter."""
    _install(session)
    session.run("faultline", "run", *session.posargs)


@nox.session
def mutants(session: nox.Session) -> None:
    """Every seeded exporter defect must be caught; the clean exporter must pass every scenario."""
    _install(session)
    session.run("faultline", "mutants", *session.posargs)


@nox.session
def lint(session: nox.Session) -> None:
    """ruff over everything, mypy over both packages (configured in pyproject.toml)."""
    session.install("-e", ".[dev]")
    session.run("ruff", "check", "harness", "exporter", "scenarios", "tests", "bench", "noxfile.py")
    session.run("mypy")


@nox.session
def bench(session: nox.Session) -> None:
    """Every benchmark in bench/ (figures land in reports/bench/)."""
    _install(session)
    names = session.posargs or ["stack", "exporter", "reconcile", "load", "proxies", "faulty_files", "explore",
                                "parallel"]
    # One invocation: every bench runs and writes its file, and a missed target fails the session
    # at the end (said by how much), not before the benches after it have run.
    session.run("faultline", "bench", *names)


@nox.session
def determinism(session: nox.Session) -> None:
    """Twenty runs of the latency scenario must give twenty identical verdicts (not in every CI)."""
    _install(session)
    session.run("faultline", "run", "latency_all_links", "--repeat", session.posargs[0] if session.posargs else "20")


@nox.session
def soak(session: nox.Session) -> None:
    """The ten-minute soak with a fixed seed and Locust writers on top (not in every CI).

    Any arguments replace the defaults: ``nox -s soak -- --duration 1h --seed 42``.
    """
    _install(session)
    session.run("faultline", "soak", *(session.posargs or ["--duration", "10m", "--seed", "1", "--load-users", "4"]))


@nox.session
def explore(session: nox.Session) -> None:
    """Ten minutes of `faultline explore` from seed 1 against the clean exporter: every drawn
    schedule must hold. Arguments replace the defaults: ``nox -s explore -- --budget 1h --seed 7``."""
    _install(session)
    session.run("faultline", "explore", *(session.posargs or ["--budget", "10m", "--seed", "1", "--keep-going"]))


@nox.session(name="mutants-explore")
def mutants_explore(session: nox.Session) -> None:
    """Every seeded defect found by exploring from seed 1 with no scenario named; the clean
    exporter passes the same budget (long: not in every CI)."""
    _install(session)
    session.run("faultline", "mutants", "--explore", *session.posargs)
