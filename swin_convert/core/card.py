"""Model cards (README.md) for converted checkpoints.

Pure string formatting: no torch, no huggingface_hub, no PyYAML. The card follows the Hub's
model-card rules (explicit ``library_name``, ``base_model`` only when the source repo is known,
no ``base_model_relation`` because a layout conversion or window transfer is none of
adapter/merge/quantized/finetune) and timm's card headings, plus a reproduce command.
"""
from __future__ import annotations

import json
import re

VERIFICATION_START = "<!-- swin-convert:verification:start -->"
VERIFICATION_END = "<!-- swin-convert:verification:end -->"
REPO_PLACEHOLDER = "<namespace>/<repo-name>"
_HUB_URL = "https://huggingface.co"

# Known verification keys, in display order, with their labels; other keys follow as-is.
_VERIFICATION_LABELS = {
    "passed": "Result",
    "comparison": "Comparison",
    "against": "Against",
    "runtime": "Runtime",
    "device": "Device",
    "dtype": "dtype",
    "num_samples": "Random inputs",
    "max_abs_diff": "Max abs logit diff",
    "mean_abs_diff": "Mean abs logit diff",
    "cos_sim": "Cosine similarity",
    "top1_agreement": "Top-1 agreement",
    "top5_overlap": "Top-5 overlap",
    "atol": "atol",
    "rtol": "rtol",
    "gated": "Gated by tolerance",
    "dataset": "Dataset",
    "num_images": "Images",
    "crop_pct": "crop_pct",
    "interpolation": "Interpolation",
    "acc1": "Acc@1",
    "acc5": "Acc@5",
}


def render_card(info: dict) -> str:
    """Render the README.md of a converted checkpoint.

    Args:
        info: Conversion facts. Required: ``library_name`` ("timm" | "transformers" |
            "swin-convert"), ``version`` and ``command``. From the family (``card_facts``):
            ``family_tag``, ``family_line``, ``family_title``, ``citation``. Optional: ``source``,
            ``source_repo``, ``source_commit``, ``source_layout``, ``target_layout``,
            ``windows_before``, ``windows_after``, ``img_size_before``, ``img_size_after``,
            ``method``, ``method_line`` (replaces the relative position bias line), ``pretrained_window_sizes``, ``dtype``, ``dtype_note``, ``license``, ``datasets``,
            ``suggested_name``, ``verification``, ``tool_version``, ``repo_id``,
            ``output_dir`` (used by the usage snippet when ``repo_id`` is unknown).

    Returns:
        The card text: YAML front matter followed by the Markdown body.

    Raises:
        KeyError: A required key is missing (a programming error, not a user error).
    """
    for key in ("library_name", "version", "command"):
        if info.get(key) is None:
            raise KeyError(f"render_card needs info[{key!r}]")
    sections = [
        _front_matter(info),
        f"# {_title(info)}",
        _summary(info),
        _details_section(info),
        _verification_section(info.get("verification")),
        _usage_section(info),
        _reproduce_section(info),
        _caveats_section(info),
        _citation_section(info),
    ]
    return "\n\n".join(s for s in sections if s) + "\n"


def read_card_fields(readme_text: str) -> dict:
    """Read ``license`` and ``datasets`` from a card's YAML front matter.

    Only what is present is returned (never a default licence): ``{}`` when the card has no
    front matter or neither field.

    Args:
        readme_text: The README.md text.

    Returns:
        ``{"license": str, "datasets": [str, ...]}``, each key only when found.
    """
    meta = parse_front_matter(readme_text)
    fields: dict = {}
    license_ = meta.get("license")
    if isinstance(license_, list):  # the spec allows one id; take the first of a list
        license_ = license_[0] if license_ else None
    if isinstance(license_, str) and license_:
        fields["license"] = license_
    datasets = meta.get("datasets")
    if isinstance(datasets, str) and datasets:
        datasets = [datasets]
    if isinstance(datasets, list) and datasets:
        fields["datasets"] = [d for d in datasets if isinstance(d, str) and d]
    return fields


def parse_front_matter(readme_text: str) -> dict:
    """Parse the top-level ``key: value`` and ``key:`` + ``- item`` lines of YAML front matter.

    A deliberately tiny subset of YAML (no PyYAML dependency): scalars, inline ``[a, b]``
    lists and block lists. Nested mappings are skipped.

    Args:
        readme_text: The README.md text.

    Returns:
        The parsed mapping, ``{}`` when there is no front matter.
    """
    lines = readme_text.lstrip("\ufeff").splitlines()
    if not lines or lines[0].strip() != "---":
        return {}
    result: dict = {}
    current: str | None = None  # key whose block list we are reading
    for line in lines[1:]:
        if line.strip() in ("---", "..."):
            break
        current = _parse_front_matter_line(line, result, current)
    return result


def update_card_verification(readme_text: str, verification: dict) -> str:
    """Replace (or insert) the Verification section of a card.

    The section is found by its markers, else by its ``## Verification`` heading; without
    either it goes before ``## Usage``, or at the end.

    Args:
        readme_text: The current README.md text.
        verification: The measured results (see :func:`render_card`).

    Returns:
        The updated card text.
    """
    section = _verification_section(verification)
    start, end = readme_text.find(VERIFICATION_START), readme_text.find(VERIFICATION_END)
    if 0 <= start < end:
        return readme_text[:start] + section + readme_text[end + len(VERIFICATION_END):]
    match = re.search(r"^## Verification[ \t]*\n.*?(?=^## |\Z)", readme_text, flags=re.M | re.S)
    if match:
        return readme_text[:match.start()] + section + "\n\n" + readme_text[match.end():].lstrip("\n")
    usage = re.search(r"^## Usage", readme_text, flags=re.M)
    if usage:
        return readme_text[:usage.start()] + section + "\n\n" + readme_text[usage.start():]
    return readme_text.rstrip("\n") + "\n\n" + section + "\n"


def fill_card_repo_id(readme_text: str, repo_id: str) -> str:
    """Put the final repo id into a card rendered before it was known (usage snippet).

    Args:
        readme_text: A card rendered without ``repo_id``.
        repo_id: The Hub repo the card is pushed to.

    Returns:
        The card with the placeholder replaced.
    """
    return readme_text.replace(REPO_PLACEHOLDER, repo_id)


# --- front matter -------------------------------------------------------------------------


def _front_matter(info: dict) -> str:
    """YAML header; licence and datasets appear only when known (never defaulted)."""
    lines = ["---", f"library_name: {_yaml_scalar(info['library_name'])}",
             "pipeline_tag: image-classification"]
    if info.get("source_repo"):
        lines.append(f"base_model: {_yaml_scalar(info['source_repo'])}")
    if info.get("license"):
        lines.append(f"license: {_yaml_scalar(info['license'])}")
    datasets = info.get("datasets") or []
    if isinstance(datasets, str):
        datasets = [datasets]
    lines += _yaml_list("datasets", datasets) if datasets else []
    lines += _yaml_list("tags", _tags(info))
    return "\n".join(lines + ["---"])


def _tags(info: dict) -> list[str]:
    tags = ["image-classification"] + ([info["family_tag"]] if info.get("family_tag") else [])
    if info["library_name"] in ("timm", "transformers"):
        tags.append(info["library_name"])
    return tags + ["swin-convert"]


def _yaml_list(key: str, items: list) -> list[str]:
    return [f"{key}:"] + [f"- {_yaml_scalar(item)}" for item in items]


def _yaml_scalar(value) -> str:
    """Plain YAML scalar when safe, else a JSON string (JSON strings are valid YAML)."""
    text = str(value)
    if re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._/+-]*", text) and text.lower() not in (
            "true", "false", "yes", "no", "on", "off", "null", "~"):
        return text
    return json.dumps(text, ensure_ascii=False)


def _parse_front_matter_line(line: str, result: dict, current: str | None) -> str | None:
    """Fold one front-matter line into ``result``; return the key of an open block list."""
    stripped = line.strip()
    if not stripped or stripped.startswith("#"):
        return current
    if stripped.startswith("- ") or stripped == "-":
        if current is not None:
            result.setdefault(current, []).append(_unquote(stripped[1:].strip()))
        return current
    if line[0] in " \t" or ":" not in stripped:
        return None  # nested mapping or continuation: outside our subset
    key, _, value = stripped.partition(":")
    value = value.strip()
    if not value:
        result[key.strip()] = []
        return key.strip()
    if value.startswith("[") and value.endswith("]"):
        result[key.strip()] = [_unquote(v.strip()) for v in value[1:-1].split(",") if v.strip()]
    else:
        result[key.strip()] = _unquote(value.split(" #")[0].strip())
    return None


def _unquote(value: str) -> str:
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
        return value[1:-1]
    return value


# --- body ---------------------------------------------------------------------------------


def _tool_version(info: dict) -> str:
    if info.get("tool_version"):
        return str(info["tool_version"])
    from .._version import __version__  # the package root is cheap: it imports nothing

    return __version__


def _title(info: dict) -> str:
    if info.get("suggested_name"):
        return str(info["suggested_name"])
    if info.get("repo_id"):
        return str(info["repo_id"]).split("/")[-1]
    return str(info.get("family_title") or "Converted checkpoint")


def _source_link(info: dict) -> str:
    repo = info.get("source_repo")
    if repo:
        return f"[{repo}]({_HUB_URL}/{repo})"
    return f"`{info.get('source') or 'a local checkpoint'}`"


def _summary(info: dict) -> str:
    notes = []
    if info.get("source_layout"):
        notes.append(f"`{info['source_layout']}` layout")
    if info.get("source_commit"):
        notes.append(f"revision `{str(info['source_commit'])[:10]}`")
    origin = _source_link(info) + (f" ({', '.join(notes)})" if notes else "")
    target = f"`{info['target_layout']}` layout" if info.get("target_layout") else "this layout"
    return f"Converted from {origin} to {target} with swin-convert v{_tool_version(info)}. No training."


def _details_section(info: dict) -> str:
    bullets = [f"- Source: {_source_link(info)}" + (
        f" at commit `{info['source_commit']}`" if info.get("source_commit") else "")]
    if info.get("family_line"):
        bullets.append(f"- {info['family_line']}")
    if info.get("source_layout") or info.get("target_layout"):
        bullets.append(f"- Layout: `{info.get('source_layout') or '?'}` → `{info.get('target_layout') or '?'}`")
    bullets += _change_bullet("Window size per stage", info, "windows")
    bullets += _change_bullet("Image size", info, "img_size")
    bullets += _change_bullet("Stripe width (split_size) per stage", info, "split")
    if info.get("method_line"):      # a family's own line (ViT: the position embedding)
        bullets.append(f"- {info['method_line']}")
    elif info.get("bias_text", "") is not None:   # None: the family has no position tensors (CSWin)
        bullets.append(f"- Relative position bias: {info.get('bias_text') or _method_text(info)}")
    bullets += [f"- {line}" for line in info.get("details") or ()]
    if info.get("pretrained_window_sizes") is not None:
        bullets.append(f"- Pretrained window sizes: {_fmt(info['pretrained_window_sizes'])}")
    if info.get("dtype"):
        note = f" ({info['dtype_note']})" if info.get("dtype_note") else ""   # e.g. cast from fp32 to bf16 by ...
        bullets.append(f"- dtype: `{info['dtype']}`{note}")
    bullets.append(f"- Tool: swin-convert v{_tool_version(info)}")
    return "## Conversion details\n\n" + "\n".join(bullets)


def _change_bullet(label: str, info: dict, stem: str) -> list[str]:
    before, after = info.get(f"{stem}_before"), info.get(f"{stem}_after")
    size = stem == "img_size"
    if before is None and after is None:
        return []
    if after is None or not _changed(info, stem):
        return [f"- {label}: {_fmt(before if before is not None else after, size)} (unchanged)"]
    return [f"- {label}: {_fmt(before, size) if before is not None else '?'} → {_fmt(after, size)}"]


def _method_text(info: dict) -> str:
    method = info.get("method")
    if not method:
        return "copied unchanged (plain key remap)"
    if str(method).lower().startswith("cpb"):
        return f"{method} (V2 continuous position bias evaluated for the new window)"
    return f"{method} interpolation of the bias tables to the new window"


def _fmt(value, size: bool = False) -> str:
    """Readable values: [7, 7, 7, 7] for lists; 224 or 192x256 for an image size (h, w)."""
    if isinstance(value, (list, tuple)):
        if size and len(value) == 2:
            return str(value[0]) if value[0] == value[1] else f"{value[0]}x{value[1]}"
        return "[" + ", ".join(str(v) for v in value) + "]"
    return str(value)


def _verification_section(verification: dict | None) -> str:
    if verification:
        body = _verification_table(verification)
    else:
        body = ("Not verified yet. Run `swin-convert check` on this checkpoint to compare its logits "
                "with the source checkpoint; it updates this section.")
    return f"{VERIFICATION_START}\n## Verification\n\n{body}\n{VERIFICATION_END}"


def _verification_table(verification: dict) -> str:
    keys = [k for k in _VERIFICATION_LABELS if k in verification]
    keys += [k for k in verification if k not in _VERIFICATION_LABELS]
    rows = ["| Metric | Value |", "|---|---|"]
    for key in keys:
        rows.append(f"| {_VERIFICATION_LABELS.get(key, key)} | {_fmt_metric(key, verification[key])} |")
    return "\n".join(rows)


def _fmt_metric(key: str, value) -> str:
    if key == "passed" and isinstance(value, bool):
        return "PASS" if value else "FAIL"
    if isinstance(value, float):
        return f"{value:.6g}"
    return str(value).replace("|", "\\|")


def _usage_section(info: dict) -> str:
    library, target = info["library_name"], _usage_target(info)
    if library == "timm":
        ref = target if target.startswith("local-dir:") else f"hf-hub:{target}"
        code = ("import timm\n\n"
                f'model = timm.create_model("{ref}", pretrained=True).eval()\n'
                "data_config = timm.data.resolve_model_data_config(model)\n"
                "transform = timm.data.create_transform(**data_config, is_training=False)")
    elif library == "transformers":
        code = ("from transformers import AutoImageProcessor, AutoModelForImageClassification\n\n"
                f'processor = AutoImageProcessor.from_pretrained("{target}")\n'
                f'model = AutoModelForImageClassification.from_pretrained("{target}").eval()')
    elif info.get("shards"):     # model-0000k-of-0000n.safetensors + model.safetensors.index.json
        code = ("from huggingface_hub import load_torch_model, snapshot_download\n\n"
                f'folder = snapshot_download("{target}")  # {info["shards"]} shards + model.safetensors.index.json\n'
                "load_torch_model(model, folder, strict=True)  # "
                f"keys in the `{info.get('target_layout') or 'official'}` layout")
    else:
        code = ("from safetensors.torch import load_file\n\n"
                'state_dict = load_file("model.safetensors")  # '
                f"keys in the `{info.get('target_layout') or 'official'}` layout")
    return f"## Usage\n\n```python\n{code}\n```"


def _usage_target(info: dict) -> str:
    """Repo id when known; else the local output dir (timm ``local-dir:``); else a placeholder."""
    if info.get("repo_id"):
        return str(info["repo_id"])
    if info.get("output_dir"):
        prefix = "local-dir:" if info["library_name"] == "timm" else ""
        return f"{prefix}{info['output_dir']}"
    return REPO_PLACEHOLDER


def _reproduce_section(info: dict) -> str:
    return ("## Reproduce\n\nThis checkpoint was produced by:\n\n"
            f"```bash\n{info['command']}\n```")


def _caveats_section(info: dict) -> str:
    caveats = []
    if _changed(info, "windows"):
        caveats.append("- The attention windows were changed without training. Window-transferred weights "
                       "usually need fine-tuning at the new window size to recover accuracy.")
    elif _changed(info, "img_size"):
        caveats.append("- The input resolution differs from the one the source was trained at; expect some "
                       "accuracy change until fine-tuned.")
    caveats.extend(f"- {note[0].upper()}{note[1:]}." for note in info.get("layout_caveats") or [])
    caveats.append("- timm, transformers and torchvision preprocess differently (crop_pct, interpolation); "
                   "compare accuracy only under the same pipeline.")
    return "## Caveats\n\n" + "\n".join(caveats)


def _changed(info: dict, stem: str) -> bool:
    """True when both values are known and differ (224 and [224, 224] are the same size)."""
    before, after = info.get(f"{stem}_before"), info.get(f"{stem}_after")
    return before is not None and after is not None and _norm(before, stem) != _norm(after, stem)


def _norm(value, stem: str):
    if isinstance(value, (list, tuple)):
        return tuple(value)
    return (value, value) if stem == "img_size" else value


def _citation_section(info: dict) -> str:
    citation = info.get("citation")
    return f"## Citation\n\n```bibtex\n{citation}\n```" if citation else ""
