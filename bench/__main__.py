"""``python -m bench``: run the benchmark (see :mod:`bench.run`)."""

from __future__ import annotations

import argparse
import tempfile
from collections.abc import Sequence
from pathlib import Path

from bench import trainers_report
from bench.presets import PRESETS
from bench.results import Results
from bench.run import render, run
from bench.sections import merge_markdown, read_json

# Phases that run on their own and merge their results (the others form "core").
PHASES = ("core", "trainers")


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
        default=",".join(PHASES),
        help=f"comma-separated phases to run, of {', '.join(PHASES)} (default: all); "
        "each merges its results into OUT/results.json and OUT/results.md",
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
    phases = [name.strip() for name in args.phases.split(",") if name.strip()]
    unknown = sorted(set(phases) - set(PHASES))
    if unknown:
        raise SystemExit(f"python -m bench: unknown phase {unknown[0]!r}; of {', '.join(PHASES)}")
    if args.report_only:
        render(Results.load(args.out / "results.json"), args.out)
        _render_sections(args.out)
        return
    preset = PRESETS[args.preset]
    if "core" in phases:
        run(preset, args.out, args.work_dir)
        _render_sections(args.out)
    if "trainers" in phases:
        trainers_report.run_phase(preset, args.out, args.work_dir)


def _render_sections(out: Path) -> None:
    """Put the merged phases' sections back into a freshly written results.md."""
    document = read_json(out / "results.json", trainers_report.NAME)
    if document is not None:
        merge_markdown(out / "results.md", trainers_report.NAME, trainers_report.markdown(document))


if __name__ == "__main__":
    main()
