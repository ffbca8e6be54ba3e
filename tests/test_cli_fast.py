"""remap's fast path (cli/fast.py): the same parameters as typer's parse, or no answer at all.

The table must be typer's declaration of remap (so a new option, a renamed flag or a changed
default cannot go unnoticed), and on every command line both parsers either agree on every
parameter or the fast path declines and typer parses it (help and usage errors included).
"""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

import swin_convert.cli  # noqa: F401  (the package; cli.app is its typer app)
from conftest import ROOT, run_cli
from runtimes import save_source, small_spec
from swin_convert.cli import commands
from swin_convert.cli.fast import FAST, PAIR, REMAP, VALUE, run_fast


def _click_command(name: str):
    import typer.main
    from swin_convert.cli import app
    return typer.main.get_command(app).commands[name]


@pytest.mark.parametrize("name", sorted(FAST))
def test_table_is_typers_declaration(name):
    fast, cmd = FAST[name], _click_command(name)
    arguments = tuple(p.name for p in cmd.params if p.param_type_name == "argument")
    assert fast.arguments == arguments
    options = [p for p in cmd.params if p.param_type_name == "option"]
    declared = {}
    for p in options:
        kind = PAIR if p.secondary_opts else ("flag" if p.is_flag else VALUE)
        typ = {"INT": int, "BOOL": bool}.get(type(p.type).__name__.removesuffix("ParamType").upper(),
                                                "path" if "Path" in type(p.type).__name__ else str)
        for flag in (*p.opts, *p.secondary_opts):
            declared[flag] = (p.name, kind, typ)
        assert p.multiple is False and p.nargs == 1 and not p.envvar, p.name
        assert (p.name in fast.required) == bool(p.required), p.name
    got = {flag: (param, kind, "path" if typ is Path else typ) for flag, (param, kind, typ) in fast.options.items()}
    assert got == declared
    # defaults: what the command function is given for an option left out
    import inspect as _inspect
    sig = _inspect.signature(getattr(commands, name))
    for p in options:
        if not p.required:
            assert sig.parameters[p.name].default == p.default, p.name


def _typer_kwargs(argv: list[str], monkeypatch) -> dict | None:
    """The parameters typer hands the command (None: typer refused the command line)."""
    from swin_convert.cli import _run
    seen = []
    monkeypatch.setattr(commands, argv[0], lambda **kw: seen.append(kw))
    code = _run(argv)
    return seen[0] if seen else None if code else {}


LINES = [
    ["remap", "official", "timm", "in.safetensors", "-o", "out"],
    ["remap", "auto", "hf", "in.pth", "--output", "o/", "--overwrite", "-q"],
    ["remap", "-o", "out.safetensors", "official", "timm", "src"],                    # options first
    ["remap", "official", "timm", "src", "--output=o", "--dtype=bf16", "--format", "json"],
    ["remap", "timm", "official", "src", "-o", "o", "--no-ema", "--keep-other", "--num-heads", "12"],
    ["remap", "timm", "official", "src", "-o", "o", "--ema", "--no-keep-other", "--num-heads=+3"],
    ["remap", "auto", "timm", "org/name@rev", "-o", "o", "--revision", "main", "--token", "hf_x",
     "--push-to", "me/x", "--max-shard-size", "5GB", "--img-size", "224,192", "--src-window", "7",
     "--pretrained-window", "8", "--split", "1,2,7,7", "--heads", "2,4,8,16"],
    ["remap", "a b", "c", "s p a c e", "-o", "ünï còde"],
]
DECLINED = [
    ["remap", "official", "timm", "src", "-o", "o", "--help"],
    ["remap", "-h"],
    ["remap", "official", "timm", "src"],                                  # no -o
    ["remap", "official", "timm", "-o", "o"],                              # too few
    ["remap", "official", "timm", "src", "extra", "-o", "o"],              # too many
    ["remap", "official", "timm", "src", "-o", "o", "-o", "p"],            # twice
    ["remap", "official", "timm", "src", "-oout"],                         # attached short value
    ["remap", "official", "timm", "src", "-o"],                            # missing value
    ["remap", "official", "timm", "src", "-o", "o", "--dtype"],
    ["remap", "official", "timm", "src", "-o", "o", "--dtype="],
    ["remap", "official", "timm", "src", "-o", "-x"],                      # a value like an option
    ["remap", "official", "timm", "src", "-o", "o", "--overwrite=yes"],
    ["remap", "official", "timm", "src", "-o", "o", "--num-heads", "x"],
    ["remap", "official", "timm", "src", "-o", "o", "--num-heads", "0x10"],
    ["remap", "official", "timm", "src", "-o", "o", "--bogus"],
    ["remap", "official", "timm", "src", "-o", "o", "--out"],              # click has no prefix matching
    ["remap", "official", "timm", "--", "src", "-o", "o"],
    ["remap", "official", "timm", "-", "-o", "o"],
    ["remap", "official", "timm", "", "-o", "o"],
    ["remap", "official", "timm", "src", "-qo", "o"],
    ["inspect", "src"],
    ["--help"],
    [],
]


@pytest.mark.parametrize("argv", LINES, ids=range(len(LINES)))
def test_both_parsers_give_the_same_parameters(argv, monkeypatch):
    import inspect as _inspect
    given = REMAP.parse(argv[1:])
    assert given is not None, argv
    defaults = {n: p.default for n, p in _inspect.signature(commands.remap).parameters.items()
                if p.default is not _inspect.Parameter.empty}
    fast = {**defaults, **given}       # what commands.remap(**given) runs with
    full = _typer_kwargs(argv, monkeypatch)
    assert full is not None and fast == full
    assert all(type(fast[k]) is type(full[k]) for k in fast)


@pytest.mark.parametrize("argv", DECLINED, ids=range(len(DECLINED)))
def test_the_fast_path_declines_what_it_cannot_read_as_click_does(argv, monkeypatch):
    called = []
    monkeypatch.setattr(commands, "remap", lambda **kw: called.append(kw))
    assert run_fast(argv) is None and called == []


def test_a_plain_remap_imports_neither_typer_nor_rich(tmp_path):
    path, _ = save_source("timm", small_spec(1), tmp_path)      # a .safetensors file
    code = ("import sys; sys.argv = ['swin-convert', 'remap', 'auto', 'official', sys.argv[1], '-o', sys.argv[2]]\n"
            "from swin_convert.cli import main\n"
            "try:\n    main()\nexcept SystemExit as e:\n    assert e.code == 0, e.code\n"
            "loaded = sorted({m.split('.')[0] for m in sys.modules} & {'typer', 'click', 'rich', 'pydantic', 'torch', "
            "'huggingface_hub'})\n"
            "assert loaded == [], loaded\n")
    done = subprocess.run([sys.executable, "-c", code, str(path), str(tmp_path / "o")], capture_output=True, text=True,
                          cwd=ROOT, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith(f"Wrote {tmp_path / 'o'} (official layout")


def test_fast_and_typer_paths_print_and_fail_alike(tmp_path):
    """The same stdout, stderr and exit code through both paths (typer forced by an option
    only it reads: --help is no use, so a repeated -o, which click reads as the last one)."""
    path, _ = save_source("official", small_spec(1), tmp_path)
    fast = run_cli("remap", "auto", "timm", path, "-o", tmp_path / "a")
    full = run_cli("remap", "auto", "timm", path, "-o", tmp_path / "x", "-o", tmp_path / "a2")
    assert fast.returncode == full.returncode == 0
    assert fast.stdout.replace(str(tmp_path / "a"), "OUT") == full.stdout.replace(str(tmp_path / "a2"), "OUT")
    # a failure: the output exists
    fast = run_cli("remap", "auto", "timm", path, "-o", tmp_path / "a")
    full = run_cli("remap", "auto", "timm", path, "-o", tmp_path / "x", "-o", tmp_path / "a")
    assert fast.returncode == full.returncode == 1 or fast.returncode == full.returncode == 2
    assert fast.stderr == full.stderr and fast.stderr.startswith("Error:") and len(fast.stderr.splitlines()) == 2
    jf = run_cli("remap", "auto", "timm", path, "-o", tmp_path / "a", "--format", "json")
    jt = run_cli("remap", "auto", "timm", path, "-o", tmp_path / "x", "-o", tmp_path / "a", "--format", "json")
    assert jf.stdout == jt.stdout and jf.returncode == jt.returncode


def test_a_path_with_brackets_is_printed_as_is(tmp_path):
    path, _ = save_source("official", small_spec(1), tmp_path)
    out = tmp_path / "out[v2]" / "[bold]x"
    done = run_cli("remap", "auto", "timm", path, "-o", out)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[0].startswith(f"Wrote {out} (timm layout")


@pytest.mark.parametrize("text", ["[green]Wrote[/] /tmp/x (timm layout, Swin V1, 92 tensors, from official)",
                                  "  README.md", "  [yellow]output[/] note [12, 12] -> [24, 24]",
                                  "[bold]org/name[/]", "  [dim]note[/] a \\[x] b", "tab\there", "a [red]b[/] c",
                                  "[bold red]Error:[/] x", "out\\[v2]/y", "ends with \\"])
def test_plain_console_prints_what_rich_prints(text, capsys):
    import io
    from rich.console import Console
    from swin_convert.cli.output import PlainConsole
    buf = io.StringIO()
    Console(file=buf, highlight=False, soft_wrap=True, emoji=False, force_terminal=False).print(text)
    plain = PlainConsole()
    plain._rich = Console(file=sys.stdout, highlight=False, soft_wrap=True, emoji=False, force_terminal=False)
    plain.print(text)
    assert capsys.readouterr().out == buf.getvalue()
