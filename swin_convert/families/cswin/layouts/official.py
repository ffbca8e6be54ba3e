"""microsoft/CSWin-Transformer classification (models/cswin.py): the canonical names themselves.

Read: ``state_dict_ema`` / ``state_dict`` (with or without ``module.``) / ``model`` / a bare dict
(io.reading unwraps; ``--no-ema`` takes the plain weights of a file holding both). A ``.pth``
output is the release format ``{'state_dict_ema': state_dict}``: main.py ``--eval_checkpoint``
reads it (``--model-ema`` is on by default), finetune.py only with ``--ema-finetune`` (without it
finetune.py looks for ``state_dict``, matches no key and silently keeps its random init).
Safetensors outputs carry the spec in metadata; a folder adds a config.json with the spec and
the official constructor arguments (image size and split are not in the weights).
"""
from ....core.schema import Layout, Signature, rule
from . import common


def configs(ckpt) -> dict:
    return {"config.json": common.config(ckpt, "official")}


OFFICIAL = Layout(
    name="official",
    title="microsoft/CSWin-Transformer classification (models/cswin.py)",
    rules=(rule("{*}", "{*}", versions=(1,)),),
    loads_with="CSWinTransformer(img_size=N, split_size=[...], ...).load_state_dict(torch.load(OUT)['state_dict_ema'])",
    # the CSWin stem and LePE convs; no seg stage-output norm norm4 (the seg backbone has it)
    signature=Signature(required=(r"^stage1_conv_embed\.0\.weight$", r"^stage1\.0\.attns\.0\.get_v\."),
                        preferred=(r"^norm\.weight$", r"^head\.weight$", r"^merge1\.conv\."),
                        excluded=(r"^(backbone\.)?norm4\.",)),
    aliases=("cswin", "cswin-official", "microsoft"),
    configs=configs,
    read_hints=common.read_hints,
    wrap="state_dict_ema",
)
