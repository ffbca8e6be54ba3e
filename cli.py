#!/usr/bin/env python3
"""Run swin-convert from a checkout: `python cli.py --help`."""
from swin_convert.cli import main

if __name__ == "__main__":
    main()
