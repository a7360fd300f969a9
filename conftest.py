"""Every test suite of the repository shares the fixtures of testing/fixtures.py."""

pytest_plugins = ["testing.fixtures"]
