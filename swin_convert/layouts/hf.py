"""transformers Swin / Swinv2, on-disk names (what ``save_pretrained`` writes).

``swin.`` / ``swinv2.`` prefix for ``*ForImageClassification`` (none for ``*Model``), q/k/v
split along rows, Swinv2 ``key`` without bias (official q_bias/v_bias become query/value
biases), head ``classifier``. Patch merging at the end of a stage, as official. Old hub
checkpoints persist ``attention.self.relative_position_index``: read and dropped.
"""
from ._schema import Layout, buffer, rule

B = "encoder.layers.{s}.blocks.{b}"
C = "layers.{s}.blocks.{b}"
SELF = B + ".attention.self"


def _limits(spec):
    windows = spec.window_size
    if spec.version == 1 and len(set(windows)) > 1:
        return (f"transformers' Swin has one window_size for every stage and cannot clamp a stage "
                f"(per-stage windows {list(windows)})")
    big = max(windows)
    if spec.version == 2 and any(w != min(big, r) for w, r in zip(windows, spec.resolutions)):
        return (f"transformers' Swinv2 has one window_size, clamped only where a stage map is smaller "
                f"(per-stage windows {list(windows)} at {spec.img_size} px)")
    if spec.cpb_baked:
        return "transformers' Swinv2 always evaluates its CPB MLP (a baked table needs the official layout)"
    if spec.version == 2 and spec.ape:
        return "transformers' Swinv2 absolute position embedding has an extra slot and does not run"
    return None


HF = Layout(
    name="hf",
    title="transformers SwinForImageClassification / Swinv2ForImageClassification",
    rules=(
        rule("patch_embed.proj.{w}", "embeddings.patch_embeddings.projection.{w}"),
        rule("patch_embed.norm.{w}", "embeddings.norm.{w}"),
        rule("absolute_pos_embed", "embeddings.position_embeddings", versions=(1,)),
        rule(C + ".norm1.{w}", B + ".layernorm_before.{w}"),
        rule(C + ".norm2.{w}", B + ".layernorm_after.{w}"),
        rule(C + ".attn.q_bias", SELF + ".query.bias", versions=(2,)),
        rule(C + ".attn.v_bias", SELF + ".value.bias", versions=(2,)),
        rule(C + ".attn.qkv.{w}", (SELF + ".query.{w}", SELF + ".key.{w}", SELF + ".value.{w}")),
        rule(C + ".attn.relative_position_bias_table", SELF + ".relative_position_bias_table", versions=(1,)),
        rule(C + ".attn.logit_scale", SELF + ".logit_scale", versions=(2,)),
        rule(C + ".attn.cpb_mlp.{*}", SELF + ".continuous_position_bias_mlp.{*}", versions=(2,)),
        rule(C + ".attn.proj.{w}", B + ".attention.output.dense.{w}"),
        rule(C + ".mlp.fc1.{w}", B + ".intermediate.dense.{w}"),
        rule(C + ".mlp.fc2.{w}", B + ".output.dense.{w}"),
        rule("layers.{s}.downsample.{*}", "encoder.layers.{s}.downsample.{*}"),
        rule("norm.{w}", "layernorm.{w}"),
        rule("head.{w}", "classifier.{w}", prefixed=False),
    ),
    buffers=(buffer("relative_position_index", SELF + ".relative_position_index", write=False),),
    prefix={1: "swin.", 2: "swinv2."},
    limits=_limits,
    loads_with="transformers.AutoModelForImageClassification.from_pretrained(OUT)",
)
