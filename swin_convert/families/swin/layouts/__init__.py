"""Swin's layouts, one file each; the family registers them in this order (detection ties
go to the first)."""
from .hf import HF
from .mmdet import MMDET
from .mmpretrain import MMPRETRAIN
from .mmseg import MMSEG
from .official import OFFICIAL
from .simmim import SIMMIM
from .timm import TIMM
from .torchvision import TORCHVISION

LAYOUTS = (OFFICIAL, TIMM, HF, TORCHVISION, MMPRETRAIN, MMDET, MMSEG, SIMMIM)
