"""``python -m bench``: run the benchmark (see :mod:`bench.run`)."""

from __future__ import annotations

import argparse
import tempfile
from collections.abc import Sequence
from pathlib import Path

from bench.presets import PRESETS
from bench.results import Results
from bench.run import PHASES, render, run


def _phases(text: str) -> tuple[str, ...]:
    chosen = tuple(name.strip() for name in text.split(",") if name.strip())
    unknown = [name for name in chosen if name not in PHASES]
    if unknown or not chosen:
        raise argparse.ArgumentTypeError(f"phases are {', '.join(PHASES)}; got {text!r}")
    return chosen


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
        "--phases",
        default=PHASES,
        type=_phases,
        help=f"comma-separated, of {', '.join(PHASES)} (default: all); the other phases' "
        "results are kept from OUT/results.json",
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
    run(PRESETS[args.preset], args.out, args.work_dir, args.phases)


if __name__ == "__main__":
    main()
