"""CLI tests that start viewers use the viewer tests' fixtures: records in the test's own
directory, and viewer ports taken from a pool that no other test uses."""

from tests.viewer.conftest import ports, private_records  # noqa: F401  (fixtures)
