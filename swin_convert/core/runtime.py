"""What every layout's runtime hook shares: strict loading, one-call forward, quiet libraries.

torch is imported inside the functions, so importing this module costs nothing.
"""
from __future__ import annotations

import contextlib
from typing import Callable

from ..errors import RuntimeLoadError


def forward_module(model, fn: Callable):
    """A runtime's model behind one call: images -> logits or pooled features."""
    from torch import nn

    class Forward(nn.Module):
        def __init__(self):
            super().__init__()
            self.model, self.fn = model, fn

        def forward(self, x):
            return self.fn(self.model, x)
    return Forward()


def torch_state(sources: dict) -> dict:
    from .torch_io import to_torch
    return {k: to_torch(v) for k, v in sources.items()}


def load_strict(model, state: dict, runtime: str) -> None:
    result = model.load_state_dict(state, strict=False)
    raise_if_incomplete(runtime, list(result.missing_keys), list(result.unexpected_keys))


def raise_if_incomplete(runtime: str, missing: list, unexpected: list, mismatched: list = ()) -> None:
    parts = [f"{len(v)} {what} key(s) ({', '.join(sorted(map(str, v))[:3])}{', ...' if len(v) > 3 else ''})"
             for what, v in (("missing", missing), ("unexpected", unexpected), ("mismatched", mismatched)) if v]
    if parts:
        raise RuntimeLoadError(f"{runtime} could not load the weights strictly: {'; '.join(parts)}", runtime=runtime,
                               missing=map(str, missing), unexpected=map(str, unexpected),
                               mismatched=mismatched)


def fp32_load_kwargs() -> dict:
    """``from_pretrained`` arguments that load in fp32 whatever ``config.json``'s dtype says
    (a bf16 output of ``--dtype``): ``dtype`` from transformers 4.56, ``torch_dtype`` before."""
    import re

    import torch
    import transformers
    major, minor = (int(x) for x in re.findall(r"\d+", transformers.__version__)[:2])
    return {"dtype" if (major, minor) >= (4, 56) else "torch_dtype": torch.float32}


@contextlib.contextmanager
def quiet_transformers():
    """from_pretrained draws a progress bar and logs; the check has its own output."""
    from transformers.utils import logging as hf_logging
    bar, level = hf_logging.is_progress_bar_enabled(), hf_logging.get_verbosity()
    hf_logging.disable_progress_bar()
    hf_logging.set_verbosity_error()
    try:
        yield
    finally:
        hf_logging.set_verbosity(level)
        if bar:
            hf_logging.enable_progress_bar()
