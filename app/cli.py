"""The ``segserve`` command: serve, download, demo-data, prepare.

Exit codes: 0 success, 1 the work failed (bad data root, download error), 2 bad
command line (argparse's own convention), 130 interrupted.
"""

from __future__ import annotations

import argparse
import gc
import logging.config
import os
import sys
import tempfile
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from pydantic import ValidationError

from service.config import Settings
from service.errors import SegserveError
from service.voc import VOC_SHA1, VOC_URL

Command = Callable[[argparse.Namespace], int]


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line ``argv`` (default: ``sys.argv[1:]``); return the exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    command: Command = args.command
    try:
        return command(args)
    except SegserveError as error:
        print(f"segserve: error: {error.detail}", file=sys.stderr)
        return 1
    except ValidationError as error:
        problem = error.errors()[0]
        name = "SEGSERVE_" + "_".join(str(part) for part in problem["loc"]).upper()
        print(f"segserve: error: {name}: {problem['msg']}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("segserve: interrupted", file=sys.stderr)
        return 130


def _port(text: str) -> int:
    return _int_in(text, 0, 65535)


def _positive(text: str) -> int:
    return _int_in(text, 1, None)


def _count(text: str) -> int:
    return _int_in(text, 0, None)


def _int_in(text: str, low: int, high: int | None) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
    if value < low or (high is not None and value > high):
        upper = "" if high is None else f" and <= {high}"
        raise argparse.ArgumentTypeError(f"must be >= {low}{upper}, got {value}")
    return value


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of every subcommand."""
    parser = argparse.ArgumentParser(
        prog="segserve",
        description="Serve the Pascal VOC2012 segmentation data set to remote trainers.",
    )
    commands = parser.add_subparsers(title="commands", required=True, metavar="COMMAND")
    _add_serve(commands)
    _add_download(commands)
    _add_demo(commands)
    _add_prepare(commands)
    return parser


def _add_serve(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    serve = commands.add_parser(
        "serve",
        help="run the HTTP server",
        description="Serve a VOC-layout data root over HTTP (Swagger UI at /docs). "
        "Without --data-root or SEGSERVE_DATA_ROOT, serves the built-in demo dataset.",
    )
    serve.add_argument(
        "--data-root",
        type=Path,
        help="VOC-layout folder (JPEGImages, SegmentationClass, "
        "ImageSets/Segmentation); default: $SEGSERVE_DATA_ROOT, else the demo dataset",
    )
    serve.add_argument("--host", help="address to listen on (default 127.0.0.1)")
    serve.add_argument("--port", type=_port, help="port to listen on (default 8000)")
    serve.add_argument("--workers", type=_positive, help="worker processes (default 1)")
    _add_cache_options(serve)
    serve.set_defaults(command=_serve)


def _add_cache_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--cache-dir", type=Path, help="decoded cache folder (default ~/.cache/segserve)"
    )
    parser.add_argument(
        "--label-dir", help="label folder below the data root (default SegmentationClass)"
    )
    parser.add_argument(
        "--split-dir",
        help="folder of the split files NAME.txt below the data root "
        "(default ImageSets/Segmentation; ImageSets/SegmentationAug for trainaug)",
    )


def _add_download(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    download = commands.add_parser(
        "download",
        help="download and extract VOC2012",
        description="Download VOCtrainval_11-May-2012.tar (resumable), check its SHA-1 and "
        "extract it to DIR/VOCdevkit/VOC2012.",
    )
    download.add_argument("--dir", type=Path, default=Path("data"), help="target (default data)")
    download.add_argument("--url", default=VOC_URL, help="archive URL, e.g. a mirror")
    download.add_argument("--sha1", default=VOC_SHA1, help="expected SHA-1 of the archive")
    download.set_defaults(command=_download)


def _add_demo(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    demo = commands.add_parser(
        "demo-data",
        help="write the synthetic demo dataset",
        description="Write the synthetic demo dataset into DIR in the VOC2012 layout.",
    )
    demo.add_argument("dir", type=Path, metavar="DIR", help="target folder")
    demo.add_argument("--train", type=_count, default=1464, help="train images (default 1464)")
    demo.add_argument("--val", type=_count, default=1449, help="val images (default 1449)")
    demo.add_argument("--seed", type=_count, default=0, help="generator seed (default 0)")
    demo.set_defaults(command=_demo)


def _add_prepare(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    prepare = commands.add_parser(
        "prepare",
        help="build the decoded cache ahead of serving",
        description="Decode every sample of DIR once into the cache, with a progress bar, "
        "so that `serve` starts at once.",
    )
    prepare.add_argument("--data-root", type=Path, required=True, help="VOC-layout folder")
    prepare.add_argument(
        "--workers", type=_positive, help="decoding processes (default: one per CPU)"
    )
    _add_cache_options(prepare)
    prepare.set_defaults(command=_prepare)


def _serve(args: argparse.Namespace) -> int:
    from app.logs import log_config
    from service.index import scan_voc

    options = {
        "SEGSERVE_DATA_ROOT": args.data_root,
        "SEGSERVE_HOST": args.host,
        "SEGSERVE_PORT": args.port,
        "SEGSERVE_WORKERS": args.workers,
        "SEGSERVE_CACHE_DIR": args.cache_dir,
        "SEGSERVE_LABEL_DIR": args.label_dir,
    }
    # Workers build their settings from the environment: that is how options reach them.
    os.environ.update({name: str(value) for name, value in options.items() if value is not None})
    settings = Settings()
    logging.config.dictConfig(log_config(settings.log_level))  # for the loading done here
    if settings.data_root is not None:
        # Fail now, with one clear line.
        scan_voc(settings.data_root, settings.label_dir, settings.split_dir)
    with tempfile.TemporaryDirectory(prefix="segserve-metrics-") as metrics_dir:
        if settings.workers > 1:
            # Read when prometheus-client is imported: before the app is.
            os.environ.setdefault("PROMETHEUS_MULTIPROC_DIR", metrics_dir)
        with _collection_paused():
            from app.server import serve
        serve(settings)
    return 0


@contextmanager
def _collection_paused() -> Iterator[None]:
    """``app.server.collection_paused`` before that module (and the whole app) is imported.

    Importing the app creates about 130,000 objects that live as long as the
    process; collecting meanwhile only walks them again and again.
    """
    gc.disable()
    try:
        yield
    finally:
        gc.freeze()
        gc.enable()


def _download(args: argparse.Namespace) -> int:
    from service.download import download_voc

    target = download_voc(args.dir, url=args.url, sha1=args.sha1, progress=True)
    print(f"VOC2012 is in {target}")
    print(f"serve it with: segserve serve --data-root {target}")
    return 0


def _demo(args: argparse.Namespace) -> int:
    from service.demo import write_demo

    root = write_demo(args.dir, train=args.train, val=args.val, seed=args.seed, progress=True)
    print(f"demo dataset ({args.train} train, {args.val} val) written to {root}")
    return 0


def _prepare(args: argparse.Namespace) -> int:
    from service.dataset import open_dataset

    settings = Settings()
    cache_dir = args.cache_dir or settings.cache_dir
    label_dir = args.label_dir or settings.label_dir
    split_dir = args.split_dir or settings.split_dir
    dataset = open_dataset(
        args.data_root,
        cache_dir,
        label_dir,
        split_dir=split_dir,
        progress=True,
        workers=args.workers,
    )
    samples = len({name for split in dataset.splits.values() for name in split.ids})
    splits = ", ".join(f"{name} {len(split)}" for name, split in sorted(dataset.splits.items()))
    print(f"samples:  {samples} ({splits})")
    print(f"excluded: {len(dataset.excluded)}")
    for item in dataset.excluded:
        print(f"  {item.name}: {item.reason}")
    print(f"size:     {dataset.stats.nbytes / 2**20:.1f} MiB in {cache_dir / dataset.fingerprint}")
    reused = " (cache already built)" if dataset.stats.reused else ""
    print(f"seconds:  {dataset.stats.seconds:.1f}{reused}")
    return 0
