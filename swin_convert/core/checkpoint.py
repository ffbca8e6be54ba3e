"""The canonical checkpoint every layout converts to and from: a family's spec plus tensors
under the family's canonical names (without persisted buffers), and what reading assumed."""
from __future__ import annotations

import math
from dataclasses import dataclass, field


@dataclass
class Assumptions:
    """What was not in the checkpoint and had to be assumed (printed by every command)."""

    notes: list[str] = field(default_factory=list)

    def add(self, note: str) -> None:
        if note not in self.notes:
            self.notes.append(note)


@dataclass
class CanonicalCheckpoint:
    """What every layout converts to and from."""

    spec: object                      # the family's spec (SwinSpec, ...)
    tensors: dict                     # canonical name -> tensor source
    source: str = ""                  # what the user gave
    source_layout: str = ""
    assumptions: Assumptions = field(default_factory=Assumptions)
    metadata: dict = field(default_factory=dict)   # source safetensors metadata
    config: dict | None = None                     # source config.json
    origin: object = None                          # ResolvedSource for hub/url inputs
    notes: list = field(default_factory=list)      # what reading did (unwrapped ['model'], ...)
    input_paths: list = field(default_factory=list)  # files never to be written over
    family: str = "swin"
    other: dict = field(default_factory=dict)        # tensors outside the model (whole-model neck/heads,
    #                                                  layout-only extras), keyed as in a whole OpenMMLab model

    @property
    def num_params(self) -> int:
        return sum(math.prod(s.shape) for s in self.tensors.values())
