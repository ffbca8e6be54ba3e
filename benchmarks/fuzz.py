"""Full mutation fuzz of the two input formats (issue 13): 10,000 safetensors headers, 2,000 .pth files.

Prints, per format, how many mutated files were accepted, refused with a swin_convert error, or
crashed (another exception, over the time limit, over the traced-memory bound, an accepted
conversion the safetensors library cannot open), the crash kinds, and the process's peak RSS.
tests/test_fuzz.py runs the same fuzzers with a few hundred cases.

Usage: python benchmarks/fuzz.py [--safetensors N] [--pth N] [--seed S] [--against DIR]
       (--against: import swin_convert from DIR instead, e.g. an older checkout, to compare)
"""
from __future__ import annotations

import argparse
import collections
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--safetensors", type=int, default=10_000)
    parser.add_argument("--pth", type=int, default=2_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--against", type=Path, default=ROOT)
    parser.add_argument("--save-crashes", type=Path, default=None, help="keep each crashing case here")
    parser.add_argument("--no-trace", action="store_true", help="skip tracemalloc (faster, no memory bound)")
    args = parser.parse_args()
    sys.path[:0] = [str(args.against), str(ROOT / "tests")]
    import warnings
    warnings.filterwarnings("ignore")
    from fuzzing import fuzz
    import swin_convert
    print(f"swin_convert from {Path(swin_convert.__file__).parent}, seed {args.seed}")
    total = 0
    for kind, count in (("safetensors", args.safetensors), ("pth", args.pth)):
        if not count:
            continue
        work = Path(tempfile.mkdtemp(prefix=f"swin-fuzz-{kind}-"))
        start = time.monotonic()
        try:
            report = fuzz(kind, count, work, seed=args.seed, trace_memory=not args.no_trace,
                          progress=max(count // 5, 1), save_crashes=args.save_crashes)
        finally:
            shutil.rmtree(work, ignore_errors=True)
        print(f"{kind}: {report.summary()}  ({time.monotonic() - start:.0f} s)")
        for (what, detail), n in collections.Counter((k, d[:90]) for _, k, d in report.crashes).most_common(12):
            print(f"    {n:4d}  {what}: {detail}")
        total += report.crash_count
    print(f"peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB; crashes in all: {total}")
    sys.exit(1 if total else 0)


if __name__ == "__main__":
    main()
