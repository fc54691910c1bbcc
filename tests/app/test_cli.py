"""The ``segserve`` command line: help, demo data, prepare, and one-line errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from app.cli import main
from tests.factories import VOC_SAMPLES, VOC_SPLITS, write_voc


@pytest.mark.parametrize("command", [[], ["serve"], ["download"], ["demo-data"], ["prepare"]])
def test_help_explains_every_option(command: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main([*command, "--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith("usage: segserve")
    expected = {
        "serve": ["--data-root", "--host", "--port", "--workers", "--cache-dir", "--label-dir"],
        "download": ["--dir", "--url", "--sha1"],
        "demo-data": ["DIR", "--train", "--val", "--seed"],
        "prepare": ["--data-root", "--cache-dir", "--workers"],
    }
    for option in expected.get(command[0] if command else "", ["serve", "prepare"]):
        assert option in out


def test_demo_data_writes_a_voc_layout(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = tmp_path / "demo"
    assert main(["demo-data", str(root), "--train", "3", "--val", "2", "--seed", "4"]) == 0
    assert len((root / "ImageSets/Segmentation/train.txt").read_text().split()) == 3
    assert len((root / "ImageSets/Segmentation/val.txt").read_text().split()) == 2
    assert len(list((root / "JPEGImages").glob("*.jpg"))) == 5
    assert len(list((root / "SegmentationClass").glob("*.png"))) == 5
    assert str(root) in capsys.readouterr().out


def test_prepare_builds_the_cache_and_summarises(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = write_voc(tmp_path / "voc", VOC_SAMPLES, VOC_SPLITS)
    cache = tmp_path / "cache"
    args = ["prepare", "--data-root", str(root), "--cache-dir", str(cache), "--workers", "1"]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "samples:  5 (train 3, val 3)" in out
    assert "excluded: 0" in out
    assert any(cache.iterdir())
    assert main(args) == 0
    assert "cache already built" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("argv", "code", "message"),
    [
        (["serve", "--data-root", "{tmp}/missing"], 1, "does not exist"),
        (["serve", "--data-root", "{tmp}"], 1, "segserve: error:"),
        (["prepare", "--data-root", "{tmp}/missing"], 1, "does not exist"),
        (["serve", "--port", "70000"], 2, "--port: must be >= 0 and <= 65535"),
        (["serve", "--workers", "0"], 2, "--workers: must be >= 1"),
        (["demo-data", "{tmp}/d", "--train", "many"], 2, "--train: not an integer"),
        (["prepare"], 2, "--data-root"),
        (["frobnicate"], 2, "invalid choice"),
    ],
)
def test_bad_input_is_one_clear_line(
    argv: list[str], code: int, message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = [arg.replace("{tmp}", str(tmp_path)) for arg in argv]
    if code == 2:
        with pytest.raises(SystemExit) as exit_info:
            main(args)
        assert exit_info.value.code == code
    else:
        assert main(args) == code
    err = capsys.readouterr().err
    assert message in err
    assert "Traceback" not in err


def test_bad_environment_setting_is_exit_2(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("SEGSERVE_MAX_BATCH_SIZE", "lots")
    root = write_voc(tmp_path / "voc", VOC_SAMPLES, VOC_SPLITS)
    assert main(["prepare", "--data-root", str(root), "--cache-dir", str(tmp_path / "c")]) == 2
    assert "SEGSERVE_MAX_BATCH_SIZE" in capsys.readouterr().err


def test_serve_hands_options_to_the_workers_through_the_environment(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    import os

    from app import server

    root = write_voc(tmp_path / "voc", VOC_SAMPLES, VOC_SPLITS)
    seen: dict[str, object] = {}

    def fake_run(supervisor: server.Supervisor) -> None:
        seen.update(count=supervisor.count, environ=dict(os.environ))

    monkeypatch.setattr(server.Supervisor, "run", fake_run)
    argv = ["serve", "--data-root", str(root), "--port", "0", "--workers", "2"]
    assert main([*argv, "--cache-dir", str(tmp_path / "cache"), "--host", "127.0.0.1"]) == 0
    environ = seen["environ"]
    assert isinstance(environ, dict)
    assert seen["count"] == 2
    assert environ["SEGSERVE_DATA_ROOT"] == str(root)
    assert environ["SEGSERVE_WORKERS"] == "2"
    assert environ["SEGSERVE_PORT"] == "0"
    assert Path(environ["PROMETHEUS_MULTIPROC_DIR"]).name.startswith("segserve-metrics-")
    assert any((tmp_path / "cache").iterdir()), "the cache is built once, before the workers"


def _voc_tar(tmp_path: Path) -> bytes:
    """A tar archive holding a small dataset at VOCdevkit/VOC2012, as the real archive does."""
    import io
    import tarfile

    root = write_voc(tmp_path / "src" / "VOCdevkit" / "VOC2012", VOC_SAMPLES, VOC_SPLITS)
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as archive:
        archive.add(root.parent, arcname="VOCdevkit")
    return buffer.getvalue()


@pytest.mark.parametrize("right_sha1", [True, False])
def test_download(tmp_path: Path, capsys: pytest.CaptureFixture[str], right_sha1: bool) -> None:
    import hashlib

    from tests.service.httpfixture import FileServer

    body = _voc_tar(tmp_path)
    sha1 = hashlib.sha1(body).hexdigest() if right_sha1 else "0" * 40
    with FileServer(body) as server:
        code = main(
            ["download", "--dir", str(tmp_path / "data"), "--url", server.url(), "--sha1", sha1]
        )
    captured = capsys.readouterr()
    if right_sha1:
        assert code == 0
        assert (tmp_path / "data/VOCdevkit/VOC2012/JPEGImages").is_dir()
        assert "segserve serve --data-root" in captured.out
    else:
        assert code == 1
        last_line = captured.err.splitlines()[-1]  # after the progress bar
        assert last_line.startswith("segserve: error:")
        assert "SHA-1" in last_line
