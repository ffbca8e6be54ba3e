"""CSWin's layouts, one file each; the family registers them in this order."""
from .official import OFFICIAL
from .seg import SEG

LAYOUTS = (OFFICIAL, SEG)
