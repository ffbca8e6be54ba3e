"""Model card rendering and parsing (swin_convert.card): pure strings, no torch, no network."""
from __future__ import annotations

from types import SimpleNamespace

import pytest

from swin_convert.families.swin import card_facts
from swin_convert.core.card import (REPO_PLACEHOLDER, VERIFICATION_END, VERIFICATION_START, fill_card_repo_id,
                               parse_front_matter, read_card_fields, render_card, update_card_verification)

COMMAND = ("swin-convert convert hf-hub:timm/swin_tiny_patch4_window7_224.ms_in1k out/ "
           "--to timm --window-size 12 --img-size 384")


def info(**overrides) -> dict:
    base = {
        "library_name": "timm", "version": 1, "command": COMMAND,
        "source": "hf-hub:timm/swin_tiny_patch4_window7_224.ms_in1k",
        "source_repo": "timm/swin_tiny_patch4_window7_224.ms_in1k", "source_commit": "0123456789abcdef" * 2 + "01234567",
        "source_layout": "timm", "target_layout": "timm",
        "windows_before": [7, 7, 7, 7], "windows_after": [12, 12, 12, 12],
        "img_size_before": 224, "img_size_after": 384, "method": "bicubic", "dtype": "float32",
        "license": "mit", "datasets": ["imagenet-1k"], "tool_version": "0.1.0",
    }
    base.update(overrides)
    return {**card_facts(SimpleNamespace(version=base["version"])), **base}   # the Swin family's card facts


def front(text: str) -> str:
    assert text.startswith("---\n")
    return text[4:text.index("\n---\n", 4)]


def test_front_matter_fields():
    text = render_card(info(repo_id="me/swin_tiny_window7to12_224to384"))
    meta = parse_front_matter(text)
    assert meta["library_name"] == "timm"
    assert meta["pipeline_tag"] == "image-classification"
    assert meta["base_model"] == "timm/swin_tiny_patch4_window7_224.ms_in1k"
    assert meta["license"] == "mit" and meta["datasets"] == ["imagenet-1k"]
    assert meta["tags"] == ["image-classification", "swin", "timm", "swin-convert"]
    assert "base_model_relation" not in front(text)


def test_no_license_or_base_model_when_unknown():
    text = render_card(info(source_repo=None, license=None, datasets=None, source="./swin_tiny.pth"))
    meta = parse_front_matter(text)
    assert "license" not in meta and "datasets" not in meta and "base_model" not in meta
    assert "license" not in front(text)
    assert "`./swin_tiny.pth`" in text


def test_tags_for_v2_transformers_and_raw():
    meta = parse_front_matter(render_card(info(library_name="transformers", version=2)))
    assert meta["tags"] == ["image-classification", "swinv2", "transformers", "swin-convert"]
    meta = parse_front_matter(render_card(info(library_name="swin-convert", target_layout="official")))
    assert meta["library_name"] == "swin-convert"
    assert meta["tags"] == ["image-classification", "swin", "swin-convert"]


def test_body_has_command_windows_and_summary():
    text = render_card(info())
    assert f"```bash\n{COMMAND}\n```" in text
    assert "[7, 7, 7, 7] → [12, 12, 12, 12]" in text
    assert "224 → 384" in text
    assert "with swin-convert v0.1.0. No training." in text
    assert "revision `0123456789`" in text
    assert "bicubic" in text
    assert "fine-tuning" in text  # windows changed -> caveat
    assert "@inproceedings{liu2021Swin" in text and "ICCV" in text
    assert "## Verification" in text and "swin-convert check" in text


def test_plain_remap_has_no_finetune_caveat():
    text = render_card(info(windows_after=[7, 7, 7, 7], img_size_after=[224, 224], method=None))
    assert "fine-tuning" not in text
    assert "(unchanged)" in text and "plain key remap" in text


def test_v2_card():
    text = render_card(info(version=2, method="cpb re-evaluated", pretrained_window_sizes=[12, 12, 12, 6],
                            img_size_before=[192, 192], img_size_after=[384, 384]))
    assert "Swin Transformer V2" in text and "CVPR" in text
    assert "Pretrained window sizes: [12, 12, 12, 6]" in text
    assert "192 → 384" in text


@pytest.mark.parametrize("library, expected", [
    ("timm", 'timm.create_model("hf-hub:me/swin", pretrained=True)'),
    ("transformers", 'AutoModelForImageClassification.from_pretrained("me/swin")'),
])
def test_usage_snippet(library, expected):
    assert expected in render_card(info(library_name=library, repo_id="me/swin"))


def test_usage_without_repo_id():
    text = render_card(info())
    assert f"hf-hub:{REPO_PLACEHOLDER}" in text
    assert 'timm.create_model("hf-hub:me/x"' in fill_card_repo_id(text, "me/x")
    assert 'create_model("local-dir:out/"' in render_card(info(output_dir="out/"))


def test_verification_table_and_update():
    verification = {"runtime": "timm", "device": "cpu", "max_abs_diff": 1.5e-05, "mean_abs_diff": 2e-06,
                     "top1_agreement": 1.0, "atol": 1e-4, "passed": True, "extra_key": 3}
    text = render_card(info(verification=verification))
    assert "| Max abs logit diff | 1.5e-05 |" in text and "| Result | PASS |" in text
    assert "| extra_key | 3 |" in text
    assert "Not verified yet" not in text

    fresh = render_card(info())
    updated = update_card_verification(fresh, {"max_abs_diff": 0.5, "passed": False})
    assert "| Result | FAIL |" in updated and "Not verified yet" not in updated
    assert updated.count("## Verification") == 1
    again = update_card_verification(updated, {"max_abs_diff": 0.25})
    assert "| Max abs logit diff | 0.25 |" in again and "0.5 |" not in again
    assert again.count(VERIFICATION_START) == 1 and again.count(VERIFICATION_END) == 1
    assert again.index("## Verification") < again.index("## Usage") < again.index("## Reproduce")


def test_verification_insert_into_foreign_cards():
    with_heading = "# Card\n\n## Verification\n\nold numbers\n\n## Usage\n\ncode\n"
    out = update_card_verification(with_heading, {"max_abs_diff": 0.1})
    assert "old numbers" not in out and out.count("## Verification") == 1 and "## Usage\n\ncode" in out
    usage_only = "# Card\n\n## Usage\n\ncode\n"
    out = update_card_verification(usage_only, {"max_abs_diff": 0.1})
    assert out.index("## Verification") < out.index("## Usage")
    bare = "# Card\n"
    assert update_card_verification(bare, {"max_abs_diff": 0.1}).rstrip().endswith(VERIFICATION_END)


@pytest.mark.parametrize("text, expected", [
    ("---\nlicense: mit\ndatasets:\n- imagenet-1k\n- imagenet-22k\n---\n# x", {
        "license": "mit", "datasets": ["imagenet-1k", "imagenet-22k"]}),
    ("---\nlicense: 'apache-2.0'  # comment\ndatasets: [imagenet-1k, \"imagenet-22k\"]\n---\n", {
        "license": "apache-2.0", "datasets": ["imagenet-1k", "imagenet-22k"]}),
    ("---\ntags:\n  - timm\nmodel-index:\n  - name: x\n    results: []\nlicense: other\n---\n", {"license": "other"}),
    ("---\ndatasets: imagenet-1k\n---\n", {"datasets": ["imagenet-1k"]}),
    ("# no front matter\nlicense: mit\n", {}),
    ("---\nlibrary_name: timm\n---\nlicense: mit\n", {}),
    ("", {}),
])
def test_read_card_fields(text, expected):
    assert read_card_fields(text) == expected


def test_round_trip_and_quoting():
    text = render_card(info(license="cc-by-nc-4.0", datasets=["imagenet-1k", "weird: name"]))
    assert read_card_fields(text) == {"license": "cc-by-nc-4.0", "datasets": ["imagenet-1k", "weird: name"]}
    assert '- "weird: name"' in text


def test_required_keys():
    with pytest.raises(KeyError):
        render_card({"library_name": "timm", "version": 1})
