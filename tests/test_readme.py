"""The README and docs/ stay true: their YAML recipes load, and CI runs the README's test
command as written."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from corsproxy.config.load import ConfigError, Overrides, load

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text()
DOCS = {f"docs/{path.name}": path.read_text() for path in sorted((ROOT / "docs").glob("*.md"))}


def yaml_blocks(text: str) -> list[str]:
    """corsproxy configs; a docker compose file (it has `services:`) is not one."""
    return [
        block
        for block in re.findall(r"```yaml\n(.*?)```", text, flags=re.S)
        if not block.lstrip().startswith(("services:", "# docker-compose", "# compose"))
        and "\nservices:" not in block
    ]


RECIPES = [
    (f"{name} recipe {i + 1}", block)
    for name, text in {"README": README, **DOCS}.items()
    for i, block in enumerate(yaml_blocks(text))
]


def variables(block: str) -> dict[str, str]:
    """A value for each ${NAME} without a default, as the user's shell would give it."""
    return {name: f"value of {name}" for name in re.findall(r"\$\{([A-Za-z_]\w*)\}", block)}


@pytest.mark.parametrize("block", [r[1] for r in RECIPES], ids=[r[0] for r in RECIPES])
def test_every_yaml_recipe_is_a_valid_config(block, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    config = tmp_path / "recipe.yaml"
    config.write_text(block)
    # A snippet that leaves the upstream to the environment (as the compose example does)
    # gets one; one that names its own upstreams must be valid as written.
    env = {} if ("upstream:" in block) else {"CORSPROXY_UPSTREAM": "http://api:8000"}
    settings = load(Overrides(config=str(config)), {**env, **variables(block)})
    assert settings.routes


def test_the_header_rules_page_shows_the_real_messages(tmp_path, monkeypatch):
    """Its first recipe without API_TOKEN, and with a forbidden name, fails as the page says."""
    monkeypatch.chdir(tmp_path)
    page = DOCS["docs/header-rules.md"]
    first = yaml_blocks(page)[0]
    forbidden = first.replace("[Content-Security-Policy]", "[Access-Control-Allow-Origin]")
    for text, env in ((first, {}), (forbidden, variables(first))):
        (tmp_path / "corsproxy.yaml").write_text(text)
        with pytest.raises(ConfigError) as caught:
            load(Overrides(config="corsproxy.yaml"), env)
        [problem] = caught.value.problems
        assert f"\n{problem}\n" in page


def test_ci_runs_the_readme_test_command():
    commands = re.findall(r"```sh\n(.*?)\n```", README, flags=re.S)
    test_command = next(c for c in commands if "pytest" in c)
    assert test_command in (ROOT / ".ci" / "run").read_text()
