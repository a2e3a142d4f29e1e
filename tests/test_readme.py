"""The README stays true: its YAML recipes load, its commands are real, its code renders and
copies as written, its links lead somewhere, and CI runs its test command as written."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest

from corsproxy import cli
from corsproxy.config.model import Overrides, load

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text()
FENCED = re.compile(r"^```(\w*)\n(.*?)^```", flags=re.S | re.M)
# corsproxy configs; a docker compose file (it has `services:`) is not one.
YAML_BLOCKS = [
    block
    for block in re.findall(r"```yaml\n(.*?)```", README, flags=re.S)
    if not block.lstrip().startswith(("services:", "# docker-compose", "# compose"))
    and "\nservices:" not in block
]
SH_BLOCKS = [body.strip() for kind, body in FENCED.findall(README) if kind == "sh"]
# Written on another branch (bench): listed here until it is merged.
PENDING_PAGES = {"docs/benchmarks.md"}


@pytest.mark.parametrize(
    "block", YAML_BLOCKS, ids=[f"recipe {i + 1}" for i in range(len(YAML_BLOCKS))]
)
def test_every_yaml_recipe_is_a_valid_config(block, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    config = tmp_path / "recipe.yaml"
    config.write_text(block)
    # A snippet that leaves the upstream to the environment (as the compose example does)
    # gets one; one that names its own upstreams must be valid as written.
    env = {} if ("upstream:" in block) else {"CORSPROXY_UPSTREAM": "http://api:8000"}
    settings = load(Overrides(config=str(config)), env)
    assert settings.routes


def test_ci_runs_the_readme_test_command():
    test_command = next(c for c in SH_BLOCKS if "pytest" in c)
    assert test_command in (ROOT / ".ci" / "run").read_text()


def test_the_first_command_sets_up_and_starts_the_demo():
    assert SH_BLOCKS[0] == (
        "python3 -m venv .venv && .venv/bin/pip install -q . && .venv/bin/corsproxy demo"
    )


def corsproxy_commands() -> list[str]:
    """Every `corsproxy ...` a shell block runs (after `&&` too), as `corsproxy ARGS`."""
    found = []
    for block in SH_BLOCKS:
        for part in re.split(r"&&|\n", block):
            words = shlex.split(part)
            if words and words[0].endswith("corsproxy"):
                found.append(shlex.join(["corsproxy", *words[1:]]))
    return found


@pytest.mark.parametrize("command", corsproxy_commands())
def test_every_corsproxy_command_in_the_readme_is_one_the_cli_takes(command):
    args = cli._parser().parse_args(shlex.split(command)[1:])  # SystemExit (2) if it is not
    assert args.command in ("serve", "check", "doctor", "demo")


def test_no_template_literal_sits_in_inline_code():
    """`fetch(`${base}/users`)` in single backticks renders without its own backticks, and the
    copied line is not JavaScript: template literals belong in fenced blocks."""
    prose = FENCED.sub("", README)
    assert [line for line in prose.splitlines() if "${" in line] == []


@pytest.mark.parametrize(
    "block",
    [body for kind, body in FENCED.findall(README) if kind == "js"],
    ids=lambda body: body.splitlines()[0][:40],
)
def test_javascript_blocks_close_every_template_literal(block):
    assert block.count("`") % 2 == 0


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces as hyphens."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def test_every_link_leads_to_a_file_or_a_heading_that_exists():
    anchors = {slug(h) for h in re.findall(r"^#+ (.*)$", FENCED.sub("", README), flags=re.M)}
    missing = []
    for target in re.findall(r"\]\(([^)\s]+)\)", README):
        if target.startswith("#"):
            if target[1:] not in anchors:
                missing.append(target)
        elif "://" not in target and target not in PENDING_PAGES:
            if not (ROOT / target).exists():
                missing.append(target)
    assert missing == []
