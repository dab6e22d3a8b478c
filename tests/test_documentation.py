"""The docs cannot drift from the CLI: every `repro …` and `repro-sweep …` command line in README.md and
docs/*.md is parsed out of the Markdown and exercised (argparse for `repro`, a real `--dry-run` for
`repro-sweep`), the way submitit's test_documentation.py runs its README."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
_FENCE = re.compile(r"```[a-z]*\n(.*?)```", re.S)
_INLINE = re.compile(r"`((?:repro|repro-sweep) [^`]+)`")


PLACEHOLDER = "PLACEHOLDER"  # what a `<your value>` in the docs becomes


def _clean(line: str) -> str | None:
    """A shell line as the command it runs: no comment, redirection, optional-argument brackets or
    `<placeholder>` spaces; None for other lines and for elided ones (`…`, a `/path/to/` path)."""
    line = re.sub(r"\s#.*$", "", line).strip()
    line = re.split(r"\s(?:>|\||&&|;)\s", line)[0].strip()
    line = re.sub(r"<[^<>]+>", PLACEHOLDER, line.replace("[", "").replace("]", ""))
    line = " ".join(line.split())
    if not re.match(r"(repro|repro-sweep)( |$)", line) or any(s in line for s in ("…", "...", "/path/to/")):
        return None
    return line


def doc_commands(text: str) -> list[str]:
    """Every repro / repro-sweep command in a Markdown text: fenced lines (with `\\` continuations) and inline code."""
    found: list[str] = []
    for block in _FENCE.findall(text):
        for line in block.replace("\\\n", " ").splitlines():
            if (cmd := _clean(line)) is not None:
                found.append(cmd)
    outside = _FENCE.sub("", text)
    for span in _INLINE.findall(outside):
        if (cmd := _clean(span)) is not None:
            found.append(cmd)
    return list(dict.fromkeys(found))


COMMANDS = [(doc.relative_to(ROOT).as_posix(), cmd) for doc in DOCS for cmd in doc_commands(doc.read_text())]
REPRO = [c for c in COMMANDS if c[1].startswith("repro ")]
SWEEP = [c for c in COMMANDS if c[1].startswith("repro-sweep ")]


def test_the_extractor_reads_fences_continuations_and_inline_code():
    text = ("Run `repro status [--sweep S] [--watch]` or `repro logs -f RUN_ID`.\n"
            "```bash\nrepro-sweep -m example=a \\\n    seed=1,2   # two seeds\nmlflow ui\n"
            "repro analyze --sweep S --json > stats.json\n```\n")
    assert doc_commands(text) == ["repro-sweep -m example=a seed=1,2", "repro analyze --sweep S --json",
                                  "repro status --sweep S --watch", "repro logs -f RUN_ID"]
    assert doc_commands("`repro logs -f <run id>` and `repro-sweep project_dir=/path/to/mine`") == [
        f"repro logs -f {PLACEHOLDER}"]


def test_the_docs_have_commands_of_both_kinds():
    assert len(REPRO) >= 10 and len(SWEEP) >= 3, (len(REPRO), len(SWEEP))


def check_repro_command(cmd: str) -> None:
    """Fail unless `cmd`'s subcommand and every flag it names exist; a complete line (one that names
    every value its flags take) must also parse. Prose like "`repro logs`" or "`repro analyze --baseline`"
    names a command or a flag only."""
    from repro_mlflow.cli import build_parser

    words = shlex.split(cmd)[1:]
    sub = build_parser()._subparsers._group_actions[0].choices  # noqa: SLF001 - argparse keeps them here
    assert words and words[0] in sub, f"`{cmd}`: no such repro command (known: {', '.join(sub)})"
    parser = sub[words[0]]
    flags = {o for a in parser._actions for o in a.option_strings}  # noqa: SLF001
    unknown = [w.split("=", 1)[0] for w in words[1:] if w.startswith("-") and w.split("=", 1)[0] not in flags]
    assert not unknown, f"`{cmd}`: repro {words[0]} has no {', '.join(unknown)}"
    wants_value = {o for a in parser._actions if a.nargs != 0 for o in a.option_strings}  # noqa: SLF001
    if len(words) == 1 or words[-1] in wants_value or (words[0] == "fingerprint" and "--diff" in words and len(words) < 4):
        return  # a flag named in prose, without its value
    try:
        build_parser().parse_args(words)
    except SystemExit as e:
        raise AssertionError(f"`{cmd}` is not a valid repro command line (argparse exit {e.code})") from None


@pytest.mark.parametrize("doc,cmd", REPRO, ids=[f"{d}: {c}" for d, c in REPRO])
def test_repro_command_parses(doc, cmd, capsys):
    try:
        check_repro_command(cmd)
    except AssertionError as e:
        pytest.fail(f"{doc}: {e}")


@pytest.mark.parametrize("cmd", ["repro analyze --sweep S --no-such-flag", "repro analyse --sweep S",
                                 "repro status --sweeps S", "repro logs -f"])
def test_a_command_that_no_longer_exists_is_caught(cmd, capsys):
    with pytest.raises(AssertionError):
        check_repro_command(cmd)


@pytest.mark.parametrize("doc,cmd", SWEEP, ids=[f"{d}: {c}" for d, c in SWEEP])
def test_repro_sweep_command_plans(doc, cmd, tmp_path):
    """`--dry-run` composes and plans every run (keys, groups, targets, factors, entry-point parameters)."""
    env = {**os.environ, "MLFLOW_TRACKING_URI": f"sqlite:///{tmp_path / 'mlflow.db'}", "REPRO_HOME": str(tmp_path / ".repro")}
    args = [a for a in shlex.split(cmd)[1:] if a != "--detach"]
    p = subprocess.run([sys.executable, "-m", "repro_mlflow.sweep.app", *args, "--dry-run"], cwd=tmp_path, env=env,
                       capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, f"{doc}: `{cmd}` fails: {p.stderr.strip()[-400:]}"
    assert not (tmp_path / "mlflow.db").exists(), "a dry run created a tracking store"


def test_every_test_docs_reliability_names_exists():
    # docs/reliability.md's tables name a test per row: each must be a test function in that file
    text = (ROOT / "docs" / "reliability.md").read_text()
    named = sorted(set(re.findall(r"`(tests/[\w/]+\.py)::(\w+)`", text)))
    assert len(named) >= 15
    missing = [f"{f}::{t}" for f, t in named
               if not (ROOT / f).is_file() or not re.search(rf"^def {t}\(", (ROOT / f).read_text(), re.M)]
    assert missing == []
    rows = [ln for ln in text.splitlines() if ln.startswith("| ") and not ln.startswith(("| ---", "| bad input |", "| fault |"))]
    assert all("`tests/" in ln or ln.rstrip().endswith("| not yet |") for ln in rows), "a row without its test"
