"""`python -m swin_convert`: the swin-convert command line."""
from swin_convert.cli import main

main()
