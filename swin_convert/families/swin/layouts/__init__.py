"""Swin's layouts, one file each; the family registers them in this order (detection ties
go to the first)."""
from .hf import HF
from .official import OFFICIAL
from .timm import TIMM

LAYOUTS = (OFFICIAL, TIMM, HF)
