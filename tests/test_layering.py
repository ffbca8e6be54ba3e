"""The package's import walls, read from the source (ast), so they cannot erode.

    cli -> api -> check / families -> core / io -> errors
A family never imports another family; a layout imports only core and its own family; only
io/hub.py imports huggingface_hub; only cli/ imports typer and rich; reference forwards import
neither timm nor transformers; no ``except ImportError`` around the package's own modules.
"""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

PKG = Path(__file__).resolve().parents[1] / "swin_convert"

# what each room may import of the package (besides itself and errors)
ALLOWED = {
    "cli": {"api", "check", "families", "core", "io", "cli"},
    "api": {"check", "families", "core", "io"},
    "check": {"families", "core", "check"},
    "families": {"core", "families"},
    "io": {"core", "io"},
    "core": {"core"},
    "errors": set(),
    "__init__": {"api", "families"},
    "__main__": {"cli"},
}


def module_name(path: Path) -> str:
    rel = path.relative_to(PKG.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def imports_of(path: Path) -> list[tuple[str, int, bool]]:
    """(absolute module imported, line, inside a try whose handler catches ImportError)."""
    tree = ast.parse(path.read_text())
    me = module_name(path)
    is_pkg = path.name == "__init__.py"
    base = me.split(".") if is_pkg else me.split(".")[:-1]
    guarded = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Try) and any(
                isinstance(h.type, ast.Name) and h.type.id in ("ImportError", "ModuleNotFoundError")
                or isinstance(h.type, ast.Tuple) and any(getattr(e, "id", "") in ("ImportError", "ModuleNotFoundError")
                                                         for e in h.type.elts)
                for h in node.handlers):
            for sub in ast.walk(node):
                guarded.add(id(sub))
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out += [(a.name, node.lineno, id(node) in guarded) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                root = base[:len(base) - node.level + 1]
                mod = ".".join(root + ([node.module] if node.module else []))
            else:
                mod = node.module or ""
            if node.module is None or (node.level and not node.module):
                out += [(f"{mod}.{a.name}", node.lineno, id(node) in guarded) for a in node.names]
            else:
                out.append((mod, node.lineno, id(node) in guarded))
    return out


def graph(root: Path = PKG) -> dict[str, list[tuple[str, int, bool]]]:
    return {module_name(p): imports_of(p) for p in sorted(root.rglob("*.py"))}


def room(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 and parts[1] not in ("__version__", "_version") else "__init__"


def violations(g: dict) -> list[str]:
    bad = []
    for mod, imports in g.items():
        r = room(mod)
        parts = mod.split(".")
        for target, line, guarded in imports:
            top = target.split(".")[0]
            where = f"{mod}:{line} imports {target}"
            if top == "swin_convert":
                t_room = room(target)
                if guarded:
                    bad.append(f"{where} inside an except ImportError")
                if t_room not in ALLOWED.get(r, set()) | {r, "errors", "__init__" if r != "__init__" else ""} \
                        and not (t_room == "__init__" and target == "swin_convert"):
                    bad.append(f"{where}: {r} may not import {t_room}")
                tparts = target.split(".")
                if r == "families" and len(parts) > 2 and t_room == "families" and len(tparts) > 2 \
                        and tparts[2] != parts[2]:
                    bad.append(f"{where}: a family imports another family")
                if "layouts" in parts[3:4] and t_room == "families" and (len(tparts) < 3 or tparts[2] != parts[2]):
                    bad.append(f"{where}: a layout imports outside core and its own family")
            if top == "huggingface_hub" and mod != "swin_convert.io.hub":
                bad.append(f"{where}: only io/hub.py imports huggingface_hub")
            if top in ("typer", "rich") and r != "cli":
                bad.append(f"{where}: only cli/ imports {top}")
            if top in ("timm", "transformers", "torchvision") and parts[-1] == "reference":
                bad.append(f"{where}: a reference forward imports a runtime")
    return bad


def test_package_respects_the_walls():
    assert violations(graph()) == []


def test_graph_sees_relative_imports():
    g = graph()
    assert ("swin_convert.core.keymap", 8, False) in [(t, ln, gd) for t, ln, gd in g["swin_convert.families.swin.convert"]
                                                     if t == "swin_convert.core.keymap"] or any(
        t == "swin_convert.core.keymap" for t, _, _ in g["swin_convert.families.swin.convert"])
    assert any(t.startswith("swin_convert.families") for t, _, _ in g["swin_convert.api"])


@pytest.mark.parametrize("graph_, expected", [
    ({"swin_convert.core.keymap": [("swin_convert.api", 3, False)]}, "core may not import api"),
    ({"swin_convert.check.engine": [("swin_convert.api", 9, False)]}, "check may not import api"),
    ({"swin_convert.io.reading": [("swin_convert.families", 5, False)]}, "io may not import families"),
    ({"swin_convert.families.vit.spec": [("swin_convert.families.swin.geometry", 1, False)]},
     "a family imports another family"),
    ({"swin_convert.families.swin.layouts.timm": [("swin_convert.families", 1, False)]},
     "a layout imports outside core and its own family"),
    ({"swin_convert.core.card": [("huggingface_hub", 1, False)]}, "only io/hub.py imports huggingface_hub"),
    ({"swin_convert.api": [("rich.table", 1, False)]}, "only cli/ imports rich"),
    ({"swin_convert.families.swin.reference": [("timm.layers", 1, False)]}, "a reference forward imports a runtime"),
    ({"swin_convert.cli.common": [("swin_convert.cli.check_cmd", 1, True)]}, "inside an except ImportError"),
])
def test_the_test_fails_on_a_broken_wall(graph_, expected):
    found = violations(graph_)
    assert any(expected in v for v in found), found


def test_help_and_remap_import_no_torch_is_checked_elsewhere():
    # tests/test_tensors.py and tests/test_cli.py run `--help` and a safetensors remap in a
    # fresh interpreter and assert that torch was never imported; keep them.
    text = (Path(__file__).parent / "test_tensors.py").read_text() + (Path(__file__).parent / "test_cli.py").read_text()
    assert "torch" in text and "sys.modules" in text
