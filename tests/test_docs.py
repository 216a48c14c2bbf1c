"""The docs are tested: every command has help and is in the README; the README's
template example loads; the README starts with the two commands."""

import re
from pathlib import Path

import pytest
from PIL import Image
from typer.testing import CliRunner

from faxflow.cli import app

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text(encoding="utf-8")


def _commands():
    import typer.main

    group = typer.main.get_command(app)
    out = []
    for name, cmd in group.commands.items():
        if hasattr(cmd, "commands"):
            out += [(f"{name} {sub}", subcmd) for sub, subcmd in cmd.commands.items()]
        else:
            out.append((name, cmd))
    return out


COMMANDS = _commands()


@pytest.mark.parametrize("name,cmd", COMMANDS, ids=[c[0] for c in COMMANDS])
def test_every_command_has_help_and_is_in_readme(name, cmd):
    assert (cmd.help or "").strip(), f"faxflow {name} has no help text"
    assert f"faxflow {name}" in README, f"'faxflow {name}' is not in README.md"
    result = CliRunner().invoke(app, name.split() + ["--help"])
    assert result.exit_code == 0, result.output


def test_readme_opens_with_the_two_commands():
    head = README[:1500]
    assert "make demo" in head and "make test" in head


@pytest.mark.parametrize("doc", ["README.md", "docs/templates.md"])
def test_template_example_loads(tmp_path, doc):
    from faxflow.templates.loader import parse_template

    text = (ROOT / doc).read_text(encoding="utf-8")
    block = re.search(r"```yaml\n(# templates/tanaka_order.yaml.*?)```", text, re.S).group(1)
    Image.new("L", (1654, 2339), 255).save(tmp_path / "tanaka_order.png")
    path = tmp_path / "tanaka_order.yaml"
    path.write_text(block, encoding="utf-8")
    tpl, problems = parse_template(path)
    assert problems == [], [str(p) for p in problems]
    assert tpl.name == "tanaka_order" and len(tpl.tables[0].columns) == 7
