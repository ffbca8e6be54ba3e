"""remap's fast path: ``swin-convert remap FROM TO SOURCE -o OUT [options]`` read without typer.

Importing typer (click and its types) and building every command's parameters is ~0.1 s, a third
of a remap that copies a 1 GB safetensors file (the copy itself is one ``copy_file_range``, as
``cp``'s). So a command line that this parser reads exactly as click would goes straight to
cli/commands.py. Anything else returns None and typer parses it, help and usage errors
included: ``--help``, an option this table lacks, an option given twice, ``--opt=`` or a missing
value, a value or argument that starts with ``-``, ``--``, ``-oVALUE``, a flag given a value, a
non-decimal integer, too few or too many arguments, a missing ``-o``.

tests/test_cli_fast.py holds the table to typer's own declaration of remap (names, flags, kinds,
defaults) and both parsers to the same parameters on the same command lines.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

VALUE, FLAG, PAIR = "value", "flag", "pair"   # --opt VALUE | --flag | --x/--no-x


@dataclass(frozen=True)
class FastCommand:
    name: str
    arguments: tuple[str, ...]                  # positional parameters, in order
    options: dict                               # flag -> (parameter, kind, type: str | int | Path | bool)
    required: tuple[str, ...] = ()              # options that must be given

    def parse(self, argv: list[str]) -> dict | None:
        """The command's keyword parameters from ``argv`` (after the command name), or None
        when this is not a command line to read without click."""
        args, kw = [], {}
        i = 0
        while i < len(argv):
            word = argv[i]
            if word == "-" or word == "--" or not word:
                return None
            if not word.startswith("-"):
                args.append(word)
                i += 1
                continue
            flag, eq, value = word.partition("=") if word.startswith("--") else (word, "", "")
            spec = self.options.get(flag)
            if spec is None:
                return None
            param, kind, typ = spec
            if param in kw:
                return None                     # click: the last one wins; let click say so
            if kind == VALUE:
                if not eq:
                    i += 1
                    if i == len(argv):
                        return None
                    value = argv[i]
                converted = _convert(value, typ)
                if converted is None:
                    return None
                kw[param] = converted
            else:
                if eq:
                    return None                 # --overwrite=yes: click's error
                kw[param] = not flag.startswith("--no-") if kind == PAIR else True
            i += 1
        if len(args) != len(self.arguments) or any(r not in kw for r in self.required):
            return None
        kw.update(zip(self.arguments, args))
        return kw


_DECIMAL = re.compile(r"[+-]?[0-9]+\Z")


def _convert(value: str, typ):
    if not value or value.startswith("-"):
        return None
    if typ is int:
        return int(value) if _DECIMAL.match(value) else None
    if typ is Path:
        return Path(value)
    return value


def _options(*specs) -> dict:
    table = {}
    for flags, param, kind, typ in specs:
        for flag in flags:
            table[flag] = (param, kind, typ)
    return table


REMAP = FastCommand(
    name="remap",
    arguments=("from_layout", "to_layout", "source"),
    options=_options(
        (("--output", "-o"), "out", VALUE, Path),
        (("--overwrite",), "overwrite", FLAG, bool),
        (("--img-size",), "img_size", VALUE, str),
        (("--src-window",), "src_window", VALUE, str),
        (("--pretrained-window",), "pretrained_window", VALUE, str),
        (("--split",), "split", VALUE, str),
        (("--heads",), "heads", VALUE, str),
        (("--ema", "--no-ema"), "ema", PAIR, bool),
        (("--num-heads",), "num_heads", VALUE, int),
        (("--revision",), "revision", VALUE, str),
        (("--token",), "token", VALUE, str),
        (("--push-to",), "push_to", VALUE, str),
        (("--keep-other", "--no-keep-other"), "keep_other", PAIR, bool),
        (("--max-shard-size",), "max_shard_size", VALUE, str),
        (("--dtype",), "dtype", VALUE, str),
        (("--format",), "fmt", VALUE, str),
        (("--quiet", "-q"), "quiet", FLAG, bool),
    ),
    required=("out",),
)

FAST = {REMAP.name: REMAP}


def run_fast(argv: list[str]) -> int | None:
    """Run ``argv`` (without the program name) here if it is a plain command line of a command
    with a fast path; its exit code, or None when typer must parse it."""
    command = FAST.get(argv[0]) if argv else None
    kw = command.parse(argv[1:]) if command is not None else None
    if kw is None:
        return None
    from . import commands
    from .output import CommandExit
    try:
        getattr(commands, command.name)(**kw)
    except CommandExit as e:
        return e.code
    return 0


__all__ = ["FastCommand", "REMAP", "FAST", "run_fast"]
