"""The link phase's pieces that need no network: tc arguments, clean-up, shards, WebDataset
stages, the static nginx configuration, results round trip, report and targets."""

from __future__ import annotations

import argparse
import os
import subprocess
import tarfile
import time
from pathlib import Path

import numpy as np
import pytest
from segserve_client.protocol.normalize import normalize_sample

from bench import netns
from bench.__main__ import parse
from bench.chapter_probe import ChapterPipeline
from bench.link import LinkConfig, run_link_rounds
from bench.linkreport import choices, link_section, link_verdicts
from bench.natural import missing_reason, write_natural
from bench.netns import LOOPBACK
from bench.nginx import find_nginx, static_config
from bench.results import Environment, LinkInfo, LinkRun, LinkSeries, Results
from bench.run import PHASES
from bench.server import free_port
from bench.shards import write_shards
from bench.stats import Epoch, measure_epochs
from bench.wds_probe import Pipeline

needs_photos = pytest.mark.skipif(missing_reason() is not None, reason=str(missing_reason()))


def test_tbf_bucket_holds_4_ms_at_the_rate() -> None:
    arguments = netns.tbf_arguments(10**9)
    assert arguments[:5] == ["root", "tbf", "rate", "1000000000bit", "burst"]
    assert int(arguments[5]) == 500_000
    assert int(netns.tbf_arguments(10**6)[5]) == 64 * 1024  # never below 64 KiB


def test_link_names_and_commands() -> None:
    assert (netns.link_name(10**9), netns.link_name(10**10)) == ("1gbit", "10gbit")
    assert netns.link_name(5 * 10**8) == "500mbit"
    inside = netns.Link("1gbit", 10**9, netns.SERVER_ADDRESS, netns.NAMESPACE)
    assert inside.command(["nginx", "-t"]) == [
        "ip",
        "netns",
        "exec",
        netns.NAMESPACE,
        "nginx",
        "-t",
    ]
    assert netns.LOOPBACK.command(["nginx"]) == ["nginx"]
    assert netns.LOOPBACK.trainer_rx_bytes() == 0


def test_leftovers_are_removed(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[list[str]] = []

    def run(argv: list[str], *, check: bool = True) -> subprocess.CompletedProcess[str]:
        calls.append(list(argv))
        return subprocess.CompletedProcess(argv, 0, f"other\n{netns.NAMESPACE} (id: 3)\n", "")

    monkeypatch.setattr(netns, "_run", run)
    monkeypatch.setattr(os.path, "exists", lambda path: netns.TRAINER_DEVICE in path)
    netns.remove_leftovers()
    assert ["ip", "netns", "delete", netns.NAMESPACE] in calls
    assert ["ip", "link", "delete", netns.TRAINER_DEVICE] in calls


def test_namespace_is_removed_when_setup_fails(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[list[str]] = []

    def run(argv: list[str], *, check: bool = True) -> subprocess.CompletedProcess[str]:
        calls.append(list(argv))
        if argv[:3] == ["ip", "link", "add"]:
            raise netns.LinkError("no veth here")
        return subprocess.CompletedProcess(argv, 0, netns.NAMESPACE, "")

    monkeypatch.setattr(netns, "_run", run)
    monkeypatch.setattr(os.path, "exists", lambda _path: False)  # no veth left over
    with pytest.raises(netns.LinkError, match="no veth"), netns.namespace():
        pass
    assert calls[-2:] == [["ip", "netns", "list"], ["ip", "netns", "delete", netns.NAMESPACE]]


def test_not_root_is_a_reason(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    assert "not root" in str(netns.unavailable())


@pytest.fixture(scope="module")
def natural_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if missing_reason():
        pytest.skip(str(missing_reason()))
    return write_natural(tmp_path_factory.mktemp("natural"), train=7, val=1, seed=1)


@needs_photos
def test_shards_hold_the_original_files(natural_root: Path, tmp_path: Path) -> None:
    shards = write_shards(natural_root, "train", tmp_path / "a", per_shard=3)
    assert shards.names == ["train-000000.tar", "train-000001.tar", "train-000002.tar"]
    assert shards.samples == 7
    names = (natural_root / "ImageSets/Segmentation/train.txt").read_text().split()
    with tarfile.open(tmp_path / "a" / shards.names[0]) as archive:
        members = archive.getnames()
        first = archive.extractfile(f"{names[0]}.jpg")
        assert first is not None
        assert first.read() == (natural_root / "JPEGImages" / f"{names[0]}.jpg").read_bytes()
    assert members == [f"{n}.{ext}" for n in names[:3] for ext in ("jpg", "png")]
    again = write_shards(natural_root, "train", tmp_path / "b", per_shard=3)
    for name in shards.names:
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()
    assert (
        again.nbytes
        == shards.nbytes
        == sum((tmp_path / "a" / n).stat().st_size for n in shards.names)
    )
    assert shards.urls("http://h:1") == [f"http://h:1/{n}" for n in shards.names]


@needs_photos
def test_webdataset_stages(natural_root: Path) -> None:
    name = (natural_root / "ImageSets/Segmentation/train.txt").read_text().split()[0]
    sample = {
        "jpg": (natural_root / "JPEGImages" / f"{name}.jpg").read_bytes(),
        "png": (natural_root / "SegmentationClass" / f"{name}.png").read_bytes(),
    }
    stages = Pipeline(200, 300, seed=0)
    image, label = stages.decode(sample)
    assert image.shape[:2] == label.shape
    assert stages.usable((image, label))
    assert not Pipeline(label.shape[0] + 1, 300, seed=0).usable((image, label))
    features, classes = Pipeline(200, 300, seed=4).crop((image, label))
    assert features.shape == (3, 200, 300)
    assert classes.shape == (200, 300)
    # The window is where the labels say it is, and normalised as the chapter's.
    found = [
        (t, c)
        for t in range(label.shape[0] - 199)
        for c in range(label.shape[1] - 299)
        if np.array_equal(label[t : t + 200, c : c + 300], classes)
    ]
    assert found
    top, left = found[0]
    expected = np.empty((3, 200, 300), dtype=np.float32)
    normalize_sample(image[top : top + 200, left : left + 300], expected)
    np.testing.assert_array_equal(features, expected)


@pytest.mark.skipif(find_nginx() is None, reason="nginx is not installed")
def test_static_config_passes_nginx_check(tmp_path: Path) -> None:
    binary = find_nginx()
    assert binary is not None
    for name in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"):
        (tmp_path / "temp" / name).mkdir(parents=True)
    config = tmp_path / "nginx.conf"
    config.write_text(static_config(tmp_path, f"127.0.0.1:{free_port()}", tmp_path, ""))
    checked = subprocess.run(
        [binary, "-p", f"{tmp_path}/", "-c", str(config), "-t"], capture_output=True, check=False
    )
    assert checked.returncode == 0, checked.stderr


def _series(link: str, pipeline: str, mode: str, encoding: str, rate: float) -> LinkSeries:
    series = LinkSeries(link, pipeline, mode, encoding, 2 if pipeline == "webdataset" else 1)
    series.epochs = [Epoch(640, [640 / rate * (i + 1) / 10 for i in range(10)])]
    series.server_cpu, series.client_cpu, series.wire_bytes = [0.64], [1.28], [640_000]
    series.body_bytes = 900.0
    return series


def _run(jpeg: float) -> LinkRun:
    gluon = "gluon-uint8"
    return LinkRun(
        status="measured",
        links=[LinkInfo("1gbit", 10**9, 9.4e8)],
        series=[
            _series("1gbit", "segserve", gluon, "raw", 100.0),
            _series("1gbit", "segserve", gluon, "lossless", 150.0),
            _series("1gbit", "segserve", gluon, "jpeg", jpeg),
            _series("1gbit", "webdataset", "", "", 120.0),
        ],
    )


def test_targets_are_judged_on_ratios() -> None:
    verdicts = link_verdicts(_run(jpeg=310.0))
    assert [v.met for v in verdicts[:3]] == [True, True, True]
    assert not verdicts[3].met  # no chapter, no loopback: not measured is missed
    missed = link_verdicts(_run(jpeg=290.0))
    assert [v.met for v in missed[:3]] == [True, False, True]
    assert missed[1].measured.startswith("2.42x")


def test_report_tables_and_choices() -> None:
    run = _run(jpeg=310.0)
    assert choices(run) == [
        "- 1 Gbit/s, Gluon `load_data_voc`: float32 NCHW `mx.nd`: `jpeg` fastest "
        "(310 samples/s, 3.10x `raw`)"
    ]
    text = "\n".join(link_section(run))
    assert (
        "| segserve `jpeg` | Gluon `load_data_voc`: float32 NCHW `mx.nd` | 310 | 3.10x | 2.58x"
        in text
    )
    assert "| 1.0 | 1.00 | 2.00 |" in text  # KB/sample on the wire, server and trainer CPU ms
    assert "Not run." in link_section(LinkRun())


def test_results_round_trip_with_the_link_phase(tmp_path: Path) -> None:
    environment = Environment("small", "now", 2, 1.0, {}, 1, 1)
    results = Results(environment, link=_run(jpeg=300.0))
    results.save(tmp_path / "results.json")
    assert Results.load(tmp_path / "results.json") == results


def test_phases_option() -> None:
    assert parse(["--phases", "link"]).phases == ("link",)
    assert parse([]).phases == PHASES
    with pytest.raises(SystemExit):
        parse(["--phases", "nope"])


def test_the_epoch_stream_is_judged_against_the_loader_where_measured() -> None:
    run = _run(jpeg=310.0)
    assert len(link_verdicts(run)) == 4  # no stream series: no stream target
    run.series += [
        _series("loopback", "segserve", "uint8", "raw", 1000.0),
        _series("loopback", "segserve", "stream", "raw", 950.0),
        _series("loopback", "segserve", "uint8", "jpeg", 500.0),
        _series("loopback", "segserve", "stream", "jpeg", 400.0),
    ]
    streams = link_verdicts(run)[4:]
    assert [(v.target.split("`")[1], v.met) for v in streams] == [("raw", True), ("jpeg", False)]
    assert streams[1].measured.startswith("0.80x")
    assert "| segserve `raw` | epoch stream: uint8 NHWC numpy | 950 |" in "\n".join(
        link_section(run)
    )


def test_the_report_says_how_long_an_epoch_was() -> None:
    run = _run(jpeg=310.0)
    assert "an epoch of all batches. One epoch per configuration" in "\n".join(link_section(run))
    run.batches_per_epoch, run.min_seconds = 12, 2.0
    text = "\n".join(link_section(run))
    assert "an epoch of 12 batches. Once per configuration per round: whole epochs" in text
    assert "until 2 s had passed" in text
    assert "warm-up" not in "\n".join(link_section(run))
    run.warm_up = True
    assert "per link after an uncounted warm-up epoch of each" in "\n".join(link_section(run))


def test_a_warm_up_epoch_is_run_and_not_counted() -> None:
    asked: list[int] = []

    def epoch(number: int) -> dict[str, object]:
        asked.append(number)
        return {"samples": 64, "stamps": [0.1]}

    series = LinkSeries("loopback", "segserve", "uint8", "raw", 1)
    config = LinkConfig(series, epoch, None, os.getpid())
    run_link_rounds([config], LOOPBACK, 2, warm_up=True)
    assert asked == [0, 1, 2]  # the warm-up asks for an epoch that no round asks for
    assert len(series.epochs) == 2


def test_the_chapter_probe_stops_after_max_batches() -> None:
    pipeline = ChapterPipeline(argparse.Namespace())

    class Batch:
        shape = (4, 3, 8, 8)

        def wait_to_read(self) -> None:
            pass

    pipeline.loader = [(Batch(), Batch())] * 5
    assert pipeline.epoch({"max_batches": 2})["samples"] == 8
    assert pipeline.epoch({"max_batches": 0})["samples"] == 20
    assert len(pipeline.epoch({})["stamps"]) == 5


def test_a_pass_repeats_whole_epochs_until_its_time_is_up() -> None:
    asked: list[int] = []

    def epoch(number: int) -> Epoch:
        asked.append(number)
        time.sleep(0.02)
        return Epoch(64, [0.01, 0.02])

    one = measure_epochs(epoch, 5, 3, 0.0)
    assert asked == [5]
    assert one == Epoch(64, [0.01, 0.02])
    asked.clear()
    several = measure_epochs(epoch, 5, 3, 0.1)
    assert asked[:3] == [5, 8, 11]  # distinct epochs
    assert len(asked) >= 4  # 0.1 s of them
    assert several.samples == 64 * len(asked)
    assert several.stamps == sorted(several.stamps)  # later epochs shifted by when asked for
    assert several.stamps[2] >= 0.02
