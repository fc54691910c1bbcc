"""``python -m bench``: run the benchmark (see :mod:`bench.run`)."""

from __future__ import annotations

import argparse
import tempfile
from collections.abc import Sequence
from pathlib import Path

from bench.presets import PRESETS
from bench.results import Results
from bench.run import render, run


def parse(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """The command line."""
    parser = argparse.ArgumentParser(
        prog="python -m bench",
        description="segserve against the d2l chapter's own pipeline, side by side in one run.",
    )
    parser.add_argument("--preset", choices=sorted(PRESETS), default="full")
    parser.add_argument("--out", type=Path, default=Path("bench"), help="where results go")
    parser.add_argument(
        "--work-dir",
        type=Path,
        default=Path(tempfile.gettempdir()) / "segserve-bench",
        help="datasets (kept between runs), caches and logs",
    )
    parser.add_argument(
        "--report-only",
        action="store_true",
        help="re-render results.md and results.png from OUT/results.json",
    )
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> None:
    """Run the benchmark (or re-render a report) as the command line says."""
    args = parse(argv)
    if args.report_only:
        render(Results.load(args.out / "results.json"), args.out)
        return
    run(PRESETS[args.preset], args.out, args.work_dir)


if __name__ == "__main__":
    main()
