"""The root of the test tree: the Hypothesis profile, and the shared fixtures as a plugin.

The shared fixtures are in tests/support/fixtures.py (Kafka, the service world,
configuration files, schemas); the helpers they use are plain modules under
tests/support/, which tests and benchmarks import. No module imports a conftest:
a package's conftest holds only fixtures that package alone uses.
"""

from __future__ import annotations

from hypothesis import HealthCheck, settings

pytest_plugins = ["tests.support.fixtures", "tests.support.exit_guard"]

# No per-example deadline: on a loaded 2-core machine a slow example is noise, not
# a failure (performance is measured by bench/, never asserted in tests).
settings.register_profile("bridge", deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("bridge")
