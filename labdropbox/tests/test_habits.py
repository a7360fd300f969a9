"""The project's habits, checked: pre-commit runs what `make lint` runs, mypy covers every
package strictly, and the changelog describes every version."""

from __future__ import annotations

import re
import subprocess
import sys
import tomllib
from pathlib import Path

import yaml

from labdropbox.tests.test_layout import PACKAGES
from testing.servers import PROJECT_DIR


def lint_commands() -> list[str]:
    """The commands of the Makefile's `lint` target, without the virtualenv's path."""
    makefile = (PROJECT_DIR / "Makefile").read_text()
    recipe = re.search(r"^lint:.*\n((?:\t.*\n)+)", makefile, re.MULTILINE)
    assert recipe is not None
    return [line.strip().replace("$(BIN)/", "") for line in recipe.group(1).splitlines()]


def test_pre_commit_runs_the_checks_of_make_lint_with_the_same_tools() -> None:
    config = yaml.safe_load((PROJECT_DIR / ".pre-commit-config.yaml").read_text())
    hooks = [hook for repo in config["repos"] for hook in repo["hooks"]]
    entries = [
        hook["entry"].replace(".venv/bin/", "").replace(" --force-exclude", "") for hook in hooks
    ]

    assert all(hook["entry"].startswith(".venv/bin/") for hook in hooks)  # the pinned tools
    assert [entry.split(" .")[0] for entry in entries] == [
        command.removesuffix(" .") for command in lint_commands()
    ]
    validated = subprocess.run(
        [
            Path(sys.executable).with_name("pre-commit"),
            "validate-config",
            ".pre-commit-config.yaml",
        ],
        cwd=PROJECT_DIR,
        capture_output=True,
        text=True,
    )
    assert validated.returncode == 0, validated.stdout + validated.stderr


def test_mypy_checks_every_package_and_every_function_is_typed() -> None:
    mypy = tomllib.loads((PROJECT_DIR / "pyproject.toml").read_text())["tool"]["mypy"]

    assert set(mypy["files"]) == set(PACKAGES)
    assert mypy["disallow_untyped_defs"] is True


def test_the_changelog_describes_every_version() -> None:
    changelog = (PROJECT_DIR / "CHANGELOG.md").read_text()
    versions = re.findall(r"^## \[([^\]]+)\]", changelog, re.MULTILINE)

    assert versions[:1] == ["Unreleased"] and {"2.0", "1.0"} <= set(versions)
    for version in versions:
        assert f"[{version}]: " in changelog  # each heading has its link
