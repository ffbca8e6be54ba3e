"""The runtimes a check loads the candidate into: ``reference`` (the family's own forward) and
every runtime a layout of the candidate's family declares (``Layout.runtime``)."""
from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Iterable

from ..core.runtime import forward_module, load_strict, torch_state
from ..errors import IncompatibleSpecError, RuntimeLoadError, SwinConvertError, UsageError
from ..families import FAMILIES, get_family

RUNTIMES = ("reference", "timm", "transformers", "torchvision", "mmpretrain")   # Swin's, in report order
#                                                                   (see runtime_names)


def runtime_names(family: str = "swin") -> tuple[str, ...]:
    """reference, then the runtimes of the family's layouts in registration order."""
    fam = get_family(family)
    return ("reference",) + tuple(dict.fromkeys(lay.runtime.name for lay in fam.layouts.values() if lay.runtime))


def _layout_of(runtime: str, family: str):
    for lay in get_family(family).layouts.values():
        if lay.runtime and lay.runtime.name == runtime:
            return lay
    return None


def installed(runtime: str, family: str = "swin") -> bool:
    if runtime == "reference":
        return True
    lay = _layout_of(runtime, family)
    return lay is not None and importlib.util.find_spec(lay.runtime.module) is not None


def _family(spec) -> str:
    for name, fam in FAMILIES.items():
        if fam.spec_type is not None and isinstance(spec, fam.spec_type):
            return name
    return "swin"


def resolve_runtimes(requested: Iterable[str], spec) -> tuple[list, dict]:
    """(runtimes to run, {runtime: why skipped}); ``all`` = every installed runtime that can express ``spec``."""
    family = _family(spec)
    names = runtime_names(family)
    requested = [r.strip().lower() for r in requested]
    for r in requested:
        if r not in names + ("all",):
            raise UsageError(f"Unknown runtime '{r}'.", f"Use one of: {', '.join(names)}, all.", option="--runtime")
    if "all" not in requested:
        for r in requested:
            _require_runtime(r, spec, family)
        return list(dict.fromkeys(requested)), {}
    run, skipped = [], {}
    for r in names:
        reason = _unavailable(r, spec, family)
        (skipped.__setitem__(r, reason) if reason else run.append(r))
    return run, skipped


def _unavailable(runtime: str, spec, family: str) -> str | None:
    if not installed(runtime, family):
        return f"not installed ({_layout_of(runtime, family).runtime.install})"
    if runtime == "reference":
        return None
    return _layout_of(runtime, family).cannot_express(spec)


def _require_runtime(runtime: str, spec, family: str) -> None:
    reason = _unavailable(runtime, spec, family)
    if reason and not installed(runtime, family):
        raise SwinConvertError(f"The {runtime} runtime is not installed.", _layout_of(runtime, family).runtime.install)
    if reason:
        raise IncompatibleSpecError(f"The {runtime} runtime cannot run this model: {reason}.",
                                    "Check with --runtime reference (or all, which skips what cannot run).")


def build_runtime(runtime: str, ckpt, output: str = "logits", workdir: Path | None = None):
    """The candidate as an fp32 CPU module of ``runtime``, weights loaded strictly.

    Raises:
        RuntimeLoadError: the runtime could not build the model or load every tensor.
    """
    try:
        if runtime == "reference":
            return _build_reference(ckpt, output).eval()
        # fp32 whatever the weights' dtype: a bf16 checkpoint is checked upcast (autocast is --dtype's job)
        return _layout_of(runtime, ckpt.family).runtime.build(ckpt, output, workdir).float().eval()
    except RuntimeLoadError:
        raise
    except (RuntimeError, ValueError, KeyError, TypeError, OSError) as e:
        raise RuntimeLoadError(f"{runtime} could not build the model or load its weights: "
                               f"{_short(e)}", runtime=runtime) from None


def _build_reference(ckpt, output: str):
    model = get_family(ckpt.family).reference(ckpt.spec)
    load_strict(model, torch_state(ckpt.tensors), "reference")
    fn = (lambda m, x: m.forward_features(x)) if output == "features" else (lambda m, x: m(x))
    return forward_module(model, fn)


def _short(e: Exception) -> str:
    """The first lines of an exception's message, for a one-line report."""
    text = str(e).strip().splitlines()
    return " ".join(line.strip() for line in text[:3])[:300] if text else type(e).__name__


__all__ = ["RUNTIMES", "runtime_names", "installed", "resolve_runtimes", "build_runtime", "RuntimeLoadError"]
