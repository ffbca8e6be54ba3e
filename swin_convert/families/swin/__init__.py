"""The Swin Transformer family (V1 and V2): spec, geometry, canonical shapes, inference,
transfer, reference forward, and its layouts (``layouts/``, one file each).

``FAMILY`` is what the registry (``swin_convert.families``) knows of Swin.
"""
from __future__ import annotations

from ...core.checkpoint import Assumptions
from ...core.keymap import to_canonical
from ...core.schema import Family
from .compare import compare
from .convert import to_layout
from .describe import describe
from .infer import flag_hints, infer_spec, recorded_hints, validate_tensors, widen
from .layouts import LAYOUTS
from .shapes import order_like_spec
from .spec import SwinSpec

V2_MARKERS = ("logit_scale", "cpb_mlp", "rpe_mlp", "continuous_position_bias_mlp", "q_bias")

CITATIONS = {
    1: """@inproceedings{liu2021Swin,
  title={Swin Transformer: Hierarchical Vision Transformer using Shifted Windows},
  author={Liu, Ze and Lin, Yutong and Cao, Yue and Hu, Han and Wei, Yixuan and Zhang, Zheng and Lin, Stephen and Guo, Baining},
  booktitle={Proceedings of the IEEE/CVF International Conference on Computer Vision (ICCV)},
  year={2021}
}""",
    2: """@inproceedings{liu2022swinv2,
  title={Swin Transformer V2: Scaling Up Capacity and Resolution},
  author={Liu, Ze and Hu, Han and Lin, Yutong and Yao, Zhuliang and Xie, Zhenda and Wei, Yixuan and Ning, Jia and Cao, Yue and Zhang, Zheng and Dong, Li and Wei, Furu and Guo, Baining},
  booktitle={Proceedings of the IEEE/CVF Conference on Computer Vision and Pattern Recognition (CVPR)},
  year={2022}
}""",
}


def detect_version(keys) -> int:
    return 2 if any(k.endswith(m) or f".{m}." in k for k in keys for m in V2_MARKERS) else 1


def read(raw, layout, version: int, flags: dict, notes: Assumptions):
    """(spec, canonical tensors in module order, other tensors) of a raw checkpoint in ``layout``."""
    if flags.get("num_heads") is not None:
        from ...errors import UsageError
        raise UsageError("--num-heads applies to ViT checkpoints; Swin's heads are read from its tensors.",
                         "Drop --num-heads.", option="--num-heads")
    tensors, other = raw.tensors, {}
    if layout.on_read:
        tensors, other = layout.on_read(tensors, raw.notes)
    parsed = to_canonical(layout, version, tensors)
    stages = len({k.split('.')[1] for k in parsed.tensors if k.startswith("layers.")})
    given = flag_hints(flags)
    widen(given, stages)
    recorded = recorded_hints(raw.metadata, raw.config, LAYOUTS, path=raw.path)
    widen(recorded, stages)
    if "img_size" in layout.needs and not (given.img_size or recorded.img_size):
        from ...errors import UsageError
        raise UsageError(f"{layout.name} checkpoints do not record the image size: pass --img-size N "
                         "(the size the weights were trained at).",
                         "torchvision's own weights: 224 for swin_t/s/b, 256 for swin_v2_t/s/b.", option="--img-size")
    spec = infer_spec(version, parsed, given, recorded, notes)
    validate_tensors(spec, parsed, layout.name)
    return spec, order_like_spec(spec, parsed.tensors), other


def reference(spec):
    from .reference import ReferenceSwin
    return ReferenceSwin(spec)


TRANSFER_OPTIONS = ("window", "res", "method", "pretrained_window", "num_classes", "map_22k_to_1k", "head_map",
                    "bake_cpb", "target_layout")


def transfer(ckpt, options):
    """``upscale`` of a Swin checkpoint: ``options`` is a TransferRequest or a dict of TRANSFER_OPTIONS."""
    from ...core.values import parse_ints, square_size
    from ...errors import UsageError
    from .transfer import TransferRequest, upscale_checkpoint
    if not isinstance(options, TransferRequest):
        unknown = sorted(k for k, v in options.items() if k not in TRANSFER_OPTIONS and v not in (None, False))
        if unknown:
            flags = ", ".join("--" + k.replace("_", "-") for k in unknown)
            raise UsageError(f"Swin upscale takes no {flags} (a ViT option).",
                             "Swin's options: --window, --res, --method (bicubic|geometric), --pretrained-window, "
                             "--num-classes, --map-22k-to-1k, --head-map, --bake-cpb.")
        options = TransferRequest(window=parse_ints(options.get("window"), "--window"),
                                  img_size=square_size(options.get("res"), "--res", "Swin"),
                                  method=options.get("method") or "bicubic",
                                  pretrained_window=parse_ints(options.get("pretrained_window"), "--pretrained-window"),
                                  num_classes=options.get("num_classes"),
                                  map_22k_to_1k=bool(options.get("map_22k_to_1k")), head_map=options.get("head_map"),
                                  bake_cpb=bool(options.get("bake_cpb")))
    return upscale_checkpoint(ckpt, options)


def card_facts(spec) -> dict:
    """What a model card says of the family: tag, version line, default title, citation."""
    v2 = spec.version == 2
    return {"family_tag": "swinv2" if v2 else "swin", "family_line": f"Swin version: {'V2' if v2 else 'V1'}",
            "family_title": "Converted Swin Transformer checkpoint", "citation": CITATIONS[2 if v2 else 1]}


FAMILY = Family(
    name="swin", title="Swin Transformer (V1, V2)", spec_type=SwinSpec, detect_version=detect_version,
    read=read, to_layout=to_layout, compare=compare, reference=reference, transfer=transfer, card_facts=card_facts, describe=describe,
    metadata_key="swin_convert.spec",
)
for _layout in LAYOUTS:
    FAMILY.add_layout(_layout)
