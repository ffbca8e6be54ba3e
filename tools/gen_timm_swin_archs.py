"""Generate swin_convert/data/timm_swin_archs.json from the installed timm.

The table holds the model arguments timm builds each registered Swin V1 / V2 architecture
with (``timm.create_model(name)``, no overrides): image size, patch, embed dim, depths,
heads, window size as timm takes it (one int, or one per stage), V2 pretrained window sizes,
MLP ratio and classes. swin-convert reads it when a timm ``config.json`` names an
architecture without spelling its arguments out (timm's released checkpoints do that).
Swin V2-CR (``swinv2_cr_*``) is a different model family and is not listed.

    python tools/gen_timm_swin_archs.py            # rewrite the table
    python tools/gen_timm_swin_archs.py --check    # exit 1 if the table differs from timm
"""
from __future__ import annotations

import argparse
import inspect
import json
import sys
from pathlib import Path

TABLE = Path(__file__).resolve().parents[1] / "swin_convert" / "data" / "timm_swin_archs.json"
MODULES = {"swin_transformer": 1, "swin_transformer_v2": 2}
FIELDS = ("img_size", "patch_size", "in_chans", "embed_dim", "depths", "num_heads", "window_size",
          "pretrained_window_sizes", "mlp_ratio", "qkv_bias", "num_classes")


class _Captured(Exception):
    def __init__(self, kwargs):
        super().__init__("captured")
        self.kwargs = kwargs


def _model_class(module_name: str):
    import timm.models
    module = getattr(timm.models, module_name)
    return getattr(module, "SwinTransformerV2" if MODULES[module_name] == 2 else "SwinTransformer")


def _captured_args(name: str, cls) -> dict:
    """The keyword arguments timm's factory passes to the model class (build aborted before any tensor)."""
    import timm
    original = cls.__init__

    def capture(self, *args, **kwargs):
        raise _Captured(kwargs)

    cls.__init__ = capture
    try:
        timm.create_model(name, pretrained=False)
    except _Captured as c:
        return c.kwargs
    finally:
        cls.__init__ = original
    raise RuntimeError(f"timm built {name} without calling {cls.__name__}")


def _plain(value):
    """JSON-friendly: tuples to lists."""
    return [_plain(v) for v in value] if isinstance(value, (tuple, list)) else value


def _square(value, what: str, name: str):
    if isinstance(value, (tuple, list)) and len(value) == 2 and all(isinstance(v, int) for v in value):
        if value[0] != value[1]:
            raise ValueError(f"{name}: non-square {what} {value}")
        return value[0]
    return value


def architecture_args(name: str, module_name: str) -> dict:
    cls = _model_class(module_name)
    defaults = {k: p.default for k, p in inspect.signature(cls.__init__).parameters.items()
                if p.default is not inspect.Parameter.empty}
    args = dict(defaults, **_captured_args(name, cls))
    out = {"version": MODULES[module_name]}
    for key in FIELDS:
        if key not in args:
            continue
        value = args[key]
        if key == "img_size":
            value = _square(value, key, name)
        elif key == "window_size":
            value = _square(value, key, name)
            if isinstance(value, (tuple, list)):          # one per stage, each an int or an (h, w) pair
                value = [_square(v, key, name) for v in value]
        out[key] = _plain(value)
    if out["version"] == 1:
        out.pop("pretrained_window_sizes", None)
    return out


def generate() -> dict:
    import timm
    from timm.models._registry import get_deprecated_models
    archs, deprecated = {}, {}
    for module_name in MODULES:
        for name in timm.list_models(module=module_name):
            archs[name] = architecture_args(name, module_name)
        for old, new in get_deprecated_models(module_name).items():
            if new:
                deprecated[old] = new
    return {"generated_by": "tools/gen_timm_swin_archs.py", "timm_version": timm.__version__,
            "architectures": dict(sorted(archs.items())), "deprecated": dict(sorted(deprecated.items()))}


def dump(table: dict) -> str:
    """One architecture per line, so a timm update reads as a small diff."""
    lines = ["{", f'  "generated_by": {json.dumps(table["generated_by"])},',
             f'  "timm_version": {json.dumps(table["timm_version"])},', '  "architectures": {']
    items = list(table["architectures"].items())
    for i, (name, args) in enumerate(items):
        lines.append(f"    {json.dumps(name)}: {json.dumps(args)}{',' if i < len(items) - 1 else ''}")
    lines.append("  },")
    lines.append('  "deprecated": {')
    items = list(table["deprecated"].items())
    for i, (old, new) in enumerate(items):
        lines.append(f"    {json.dumps(old)}: {json.dumps(new)}{',' if i < len(items) - 1 else ''}")
    lines += ["  }", "}"]
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--check", action="store_true", help="compare with the shipped table instead of writing it")
    ns = parser.parse_args(argv)
    table = generate()
    if ns.check:
        shipped = json.loads(TABLE.read_text())
        same = shipped["architectures"] == table["architectures"] and shipped["deprecated"] == table["deprecated"]
        print(f"{TABLE.name}: {'matches' if same else 'differs from'} timm {table['timm_version']}")
        return 0 if same else 1
    TABLE.write_text(dump(table))
    print(f"wrote {TABLE} ({len(table['architectures'])} architectures, timm {table['timm_version']})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
