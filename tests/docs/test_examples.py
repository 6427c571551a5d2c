"""Every code example of README.md and docs/*.md runs (the rules are in docs/development.md).

``python`` blocks are executed, ``bash`` blocks run with bash in a scratch folder that links
the repository, ``toml`` blocks are loaded by the audit (or gate) config loader, ``json``
blocks are parsed. Blocks annotated ``<!-- example: long -->`` (or ``network``,
``destructive``) are checked without running: each ``facerobust`` command is parsed by the
CLI's own parser and the configs, scripts and make targets it names must exist and load.
"""

from __future__ import annotations

import ast
import contextlib
import json
import os
import re
import shlex
import signal
import socket
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

ROOT = Path(__file__).resolve().parents[2]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
FENCE = re.compile(r"^```(\w*)\s*$")
ANNOTATION = re.compile(r"<!--\s*example:\s*([\w-]+)\s*-->")
PARSE_ONLY = ("long", "network", "destructive")
KINDS = (*PARSE_ONLY, "data")
CHECKED_LANGS = ("python", "bash", "toml", "json")
KNOWN_LANGS = (*CHECKED_LANGS, "text")
# links of the scratch folder a bash / python block runs in (relative paths as in the docs)
LINKED = ("examples", "src", "docs", "benchmarks", "scripts", "Makefile", "pyproject.toml")
NEEDS_DATA = re.compile(r"--dataset lfw|FACEROBUST_DATA|/work/shared/data")
BLOCK_TIMEOUT_S = 600


@dataclass(frozen=True)
class Example:
    page: str  # relative to the repository root
    line: int  # line of the opening fence (1-based)
    lang: str
    code: str
    kind: str  # "" (run it) or one of KINDS

    @property
    def id(self) -> str:
        return f"{self.page}:{self.line}:{self.lang}" + (f":{self.kind}" if self.kind else "")


def extract(path: Path, root: Path = ROOT) -> list[Example]:
    """The fenced blocks of one page, each with the annotation on the lines before it."""
    page = str(path.relative_to(root))
    lines = path.read_text(encoding="utf-8").splitlines()
    found: list[Example] = []
    pending, i = "", 0
    while i < len(lines):
        note = ANNOTATION.search(lines[i])
        if note:
            if note.group(1) not in KINDS:
                raise ValueError(f"{page}:{i + 1}: unknown annotation {note.group(1)!r} "
                                 f"(known: {', '.join(KINDS)})")
            pending = note.group(1)
        fence = FENCE.match(lines[i])
        if fence:
            lang = fence.group(1)
            if lang not in KNOWN_LANGS:
                raise ValueError(f"{page}:{i + 1}: a code block needs a language, one of "
                                 f"{', '.join(KNOWN_LANGS)} (got {lang!r})")
            end = i + 1
            while end < len(lines) and not FENCE.match(lines[end]):
                end += 1
            if end == len(lines) or FENCE.match(lines[end]).group(1):  # type: ignore[union-attr]
                raise ValueError(f"{page}:{i + 1}: code block is not closed by a bare ```")
            found.append(Example(page, i + 1, lang, "\n".join(lines[i + 1:end]) + "\n",
                                 pending))
            pending, i = "", end
        i += 1
    return found


def collect() -> list[Example]:
    """All checked examples; a block repeated on several pages is run once."""
    seen: set[tuple[str, str, str]] = set()
    out = []
    for path in PAGES:
        for ex in extract(path):
            key = (ex.lang, ex.kind, ex.code)
            if ex.lang in CHECKED_LANGS and key not in seen:
                seen.add(key)
                out.append(ex)
    return out


EXAMPLES = collect()


def _param(ex: Example) -> Any:
    marks = []
    if ex.kind == "data":
        marks.append(pytest.mark.data)
    if ex.lang in ("python", "bash") and ex.kind not in PARSE_ONLY:
        marks.append(pytest.mark.slow)
    return pytest.param(ex, id=ex.id, marks=marks)


# ---------------------------------------------------------------- the scratch folder

def make_sandbox(where: Path) -> Path:
    """A folder that looks like a checkout with its ``.venv``: the repository's folders are
    linked, ``.venv/bin/facerobust`` and ``.venv/bin/python`` run this interpreter on ``src``."""
    for name in LINKED:
        (where / name).symlink_to(ROOT / name)
    bin_dir = where / ".venv" / "bin"
    bin_dir.mkdir(parents=True)
    shims = {"python": "", "python3": "", "facerobust": "-m facerobust.cli ", "pip": "-m pip "}
    for name, args in shims.items():
        shim = bin_dir / name
        shim.write_text(f'#!/bin/sh\nexec "{sys.executable}" {args}"$@"\n')
        shim.chmod(0o755)
    return where


def sandbox_env(sandbox: Path) -> dict[str, str]:
    env = dict(os.environ)
    paths = [str(ROOT / "src"), str(ROOT)]
    if env.get("PYTHONPATH"):
        paths.append(env["PYTHONPATH"])
    env["PYTHONPATH"] = os.pathsep.join(paths)
    env["PATH"] = os.pathsep.join([str(sandbox / ".venv" / "bin"), env.get("PATH", "")])
    # torch on 1 thread: on a busy 2-core box 2 threads make the examples ~5x slower
    env.setdefault("OMP_NUM_THREADS", "1")
    return env


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def run_bash(code: str, sandbox: Path) -> None:
    if "facerobust serve" in code:  # a gate on a free port instead of 8000
        code = re.sub(r"\b8000\b", str(free_port()), code)
    proc = subprocess.Popen(["bash", "-e", "-o", "pipefail", "-c", code], cwd=sandbox,
                            env=sandbox_env(sandbox), stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, start_new_session=True)
    try:
        out, _ = proc.communicate(timeout=BLOCK_TIMEOUT_S)
    finally:  # also a server the block left running in the background
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
    if proc.returncode != 0:
        pytest.fail(f"exit status {proc.returncode}; output:\n{out[-4000:]}")


def run_python(code: str, name: str, sandbox: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import torch

    monkeypatch.chdir(sandbox)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as for the bash blocks (OMP_NUM_THREADS=1)
    try:
        exec(compile(code, name, "exec"), {"__name__": "__main__"})
    finally:
        torch.set_num_threads(threads)


# ---------------------------------------------------------------- checks without running

def shell_commands(code: str) -> list[list[str]]:
    """The simple commands of a bash block, leading ``VAR=value`` words dropped and
    ``$VAR`` expanded from the block's own assignments."""
    values: dict[str, str] = {}
    out = []
    for line in code.replace("\\\n", " ").splitlines():
        words = shlex.split(line, comments=True)
        while words and re.fullmatch(r"[A-Za-z_]\w*=.*", words[0]):
            name, value = words.pop(0).split("=", 1)
            values[name] = value
        words = [re.sub(r"\$(\w+)", lambda m: values.get(m.group(1), m.group(0)), w)
                 for w in words]
        if words and words[0] not in ("export", "#"):
            out.append(words)
    return out


def check_cli(argv: list[str]) -> None:
    from facerobust.cli import build_parser

    try:
        args = build_parser().parse_args(argv)
    except SystemExit as stop:
        assert stop.code == 0, f"facerobust {' '.join(argv)}: arguments rejected"
        return
    config = str(getattr(args, "config", "") or "")
    # a config the docs name must exist and load; CONFIG, /tmp/x.toml (made by the block) aside
    named = bool(config) and (config.startswith("examples/") or (ROOT / config).is_file())
    if args.command == "audit" and named:
        from facerobust.eval.config import load_config

        load_config(ROOT / config)
    elif args.command == "serve" and named:
        from facerobust.service.config import load_gate_config

        load_gate_config(ROOT / config)


def check_command(words: list[str]) -> None:
    prog, rest = Path(words[0]).name, words[1:]
    if prog == "facerobust":
        check_cli(rest)
    elif prog.startswith("python"):
        script = next((w for w in rest if not w.startswith("-")), "")
        assert (ROOT / script).is_file(), f"{script}: no such script"
    elif prog == "pip" and "-e" in rest:
        extra = re.search(r"\[(\w+)\]", " ".join(rest))
        if extra:
            extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"][
                "optional-dependencies"]
            assert extra.group(1) in extras, f"pyproject.toml has no extra {extra.group(1)!r}"
    elif prog == "make":
        makefile = (ROOT / "Makefile").read_text()
        for target in rest:
            assert re.search(rf"^{re.escape(target)}:", makefile, re.M), \
                f"Makefile has no target {target!r}"


def check_python_without_running(code: str, name: str) -> None:
    tree = ast.parse(code, name)
    imports = [node for node in tree.body if isinstance(node, ast.Import | ast.ImportFrom)]
    exec(compile(ast.Module(body=imports, type_ignores=[]), name, "exec"), {})


def check_toml(code: str) -> None:
    doc = tomllib.loads(code)
    if "model" in doc and set(doc) <= {"model", "input", "output", "calibration"}:
        from facerobust.models.spec_file import parse_model_spec

        parse_model_spec(doc, ROOT / "docs" / "spec.toml", check_files=False)
    elif set(doc) == {"remote"}:
        from facerobust.service.remote import parse_remote

        parse_remote(doc["remote"])
    elif set(doc) <= {"gate", "limits"}:
        from facerobust.service.config import parse_gate_config

        parse_gate_config(doc)
    else:
        from facerobust.eval.config import parse_config

        parse_config(doc)


# ---------------------------------------------------------------- the tests

def test_pages_have_examples_and_are_in_the_site() -> None:
    nav = (ROOT / "mkdocs.yml").read_text()
    for page in PAGES[1:]:
        assert f": {page.name}" in nav, f"{page.name} is not in mkdocs.yml's nav"
    assert len(EXAMPLES) >= 40


def test_runnable_examples_do_not_need_real_data() -> None:
    wrong = [ex.id for ex in EXAMPLES
             if ex.kind == "" and ex.lang in ("bash", "python") and NEEDS_DATA.search(ex.code)]
    assert not wrong, f"annotate these <!-- example: data --> (or use the demo data): {wrong}"


def test_extract_reads_annotations_and_refuses_bad_blocks(tmp_path: Path) -> None:
    page = tmp_path / "page.md"
    page.write_text("<!-- example: long -->\n*note*\n\n```bash\nmake test\n```\n\n"
                    "```python\nx = 1\n```\n")
    first, second = extract(page, tmp_path)
    assert (first.kind, first.lang, first.code) == ("long", "bash", "make test\n")
    assert (second.kind, second.line) == ("", 8)
    page.write_text("<!-- example: sometimes -->\n```bash\nls\n```\n")
    with pytest.raises(ValueError, match="unknown annotation 'sometimes'"):
        extract(page, tmp_path)
    page.write_text("```\nls\n```\n")
    with pytest.raises(ValueError, match="needs a language"):
        extract(page, tmp_path)


def test_parse_only_check_catches_a_wrong_argument() -> None:
    with pytest.raises(AssertionError, match="arguments rejected"):
        check_command(shlex.split(".venv/bin/facerobust attack --no-such-flag 1 --out x"))
    with pytest.raises(AssertionError, match="no target"):
        check_command(["make", "no-such-target"])
    check_command(shlex.split(".venv/bin/facerobust audit examples/first-audit.toml --out x"))


@pytest.mark.parametrize("example", [_param(ex) for ex in EXAMPLES])
def test_example(example: Example, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    name = f"{example.page}:{example.line}"
    if example.lang == "toml":
        check_toml(example.code)
    elif example.lang == "json":
        json.loads(example.code)
    elif example.kind in PARSE_ONLY:
        if example.lang == "python":
            check_python_without_running(example.code, name)
        else:
            for words in shell_commands(example.code):
                check_command(words)
    elif example.lang == "python":
        run_python(example.code, name, make_sandbox(tmp_path), monkeypatch)
    else:
        run_bash(example.code, make_sandbox(tmp_path))
