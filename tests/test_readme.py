"""The README stays true: its YAML recipes load, and CI runs its test command as written."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from corsproxy.config.load import Overrides, load

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text()
# corsproxy configs; a docker compose file (it has `services:`) is not one.
YAML_BLOCKS = [
    block
    for block in re.findall(r"```yaml\n(.*?)```", README, flags=re.S)
    if not block.lstrip().startswith(("services:", "# docker-compose", "# compose"))
    and "\nservices:" not in block
]


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
    commands = re.findall(r"```sh\n(.*?)\n```", README, flags=re.S)
    test_command = next(c for c in commands if "pytest" in c)
    assert test_command in (ROOT / ".ci" / "run").read_text()
