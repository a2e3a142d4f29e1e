"""The README and docs/ stay true: their YAML recipes load, the README's commands are real, its
code renders and copies as written, its links lead somewhere, and CI runs its test command as
written."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest

from corsproxy import cli
from corsproxy.config.load import ConfigError, Overrides, load

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text()
DOCS = {f"docs/{path.name}": path.read_text() for path in sorted((ROOT / "docs").glob("*.md"))}
FENCED = re.compile(r"^```(\w*)\n(.*?)^```", flags=re.S | re.M)


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
SH_BLOCKS = [body.strip() for kind, body in FENCED.findall(README) if kind == "sh"]
# Pages the README links to that another branch is still writing: listed here until merged.
PENDING_PAGES: set[str] = set()


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
            words = shlex.split(part, comments=True)
            if words and words[0].endswith("corsproxy"):
                found.append(shlex.join(["corsproxy", *words[1:]]))
    return found


@pytest.mark.parametrize("command", corsproxy_commands())
def test_every_corsproxy_command_in_the_readme_is_one_the_cli_takes(command):
    args = cli._parser().parse_args(shlex.split(command)[1:])  # SystemExit (2) if it is not
    assert args.command in ("serve", "check", "doctor", "demo", "trust")


def test_no_template_literal_sits_in_inline_code():
    """`fetch(`${base}/users`)` in single backticks renders without its own backticks, and the
    copied line is not JavaScript: template literals belong in fenced blocks."""
    prose = FENCED.sub("", README)
    # A template literal opens with a backtick after code: `(`, `=` or `,` then `${`. A
    # config value such as `${API_KEY}` on its own is fine in inline code.
    literal = re.compile(r"[(=,]\s*`[^`\n]*\$\{")
    assert [line for line in prose.splitlines() if literal.search(line)] == []


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
