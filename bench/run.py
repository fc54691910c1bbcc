"""One benchmark run, phase by phase, and its report.

1. datasets: the demo dataset of the preset's size (and the growth sizes);
2. start-up: cold builds, a cold server start, warm starts, warm
   ``open_dataset``, server memory (:mod:`bench.startup`);
3. throughput: the chapter's pipeline and segserve's deliveries, interleaved
   round by round (:mod:`bench.throughput`);
4. nginx: the same client through nginx in front of 1 and 2 replicas, and
   given both replicas directly (:mod:`bench.nginx`);
5. growth: time per batch on the base and the larger dataset (:mod:`bench.growth`);
6. scale-out: 1, 2 and 4 replicas reached by the client directly and through
   nginx, with the per-core figure (:mod:`bench.scaleout`);
7. link: segserve's encodings, WebDataset and the chapter on natural
   photographs, over loopback and emulated 1 and 10 Gbit/s links (:mod:`bench.link`);
8. recipes: the cost per batch of ``photometric`` and ``cat_max_ratio``
   against a plain batch (:mod:`bench.recipes`);
9. many trainers: 1, 4 and 16 trainer processes on one server and on two
   replicas (:mod:`bench.trainers`);
10. ``results.json``, ``results.md`` and ``results.png`` in the output folder.

Phases 1-5 are ``core``, 6 ``scaleout``, 7 ``link``, 8 ``recipes``, 9 ``trainers``, and ``codecs``
(:mod:`bench.codecs`: bytes per sample, encode and decode times of each
transport encoding); each can run alone. A run of only some phases keeps the
other phases' results from the ``results.json`` already in the output folder.
"""

from __future__ import annotations

import dataclasses
import os
import platform
import time
from datetime import UTC, datetime
from importlib.metadata import version
from pathlib import Path

from bench.codecs import codecs_section, measure_codecs
from bench.growth import measure_growth
from bench.link import measure_link
from bench.nginx import measure_nginx
from bench.plot import write_plot
from bench.presets import Preset
from bench.protocol import Probe
from bench.recipes import measure_recipes, recipes_section
from bench.report import write_report
from bench.results import Environment, Results
from bench.scaleout import measure_scaleout
from bench.scaleout_report import scaleout_section
from bench.startup import measure_startup
from bench.throughput import measure_throughput
from bench.trainers_report import measure_trainers_phase, trainers_section
from bench.workspace import Workspace, say


def environment(preset: Preset) -> Environment:
    """The machine, the versions and the load average before the run."""
    pages, page_size = os.sysconf("SC_PHYS_PAGES"), os.sysconf("SC_PAGE_SIZE")
    versions = {"python": platform.python_version()}
    versions |= {name: version(name) for name in ("numpy", "mxnet", "segserve", "uvicorn")}
    return Environment(
        preset=preset.name,
        started=datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        cpus=len(os.sched_getaffinity(0)),
        memory_gib=round(pages * page_size / 2**30, 1),
        versions=versions,
        train_images=preset.train,
        val_images=preset.val,
        load_before=list(os.getloadavg()),
        min_seconds=preset.min_seconds,
    )


PHASES = ("core", "scaleout", "link", "codecs", "recipes", "trainers")


def measure(preset: Preset, space: Workspace) -> Results:
    """The core phases of the benchmark, on a fresh set of caches."""
    results = Results(environment(preset))
    root = space.dataset(preset.train, preset.val, preset.seed)
    space.clean_caches()
    cache = space.fresh_cache("main")
    with Probe("bench.client_probe", [], space.log("client")) as client:
        results.startup = measure_startup(space, preset, root, cache, client)
        series, hellos = measure_throughput(space, preset, root, cache, client)
        results.throughput = series
        results.startup.chapter_load = [
            float(h["load_train_s"]) + float(h["load_val_s"]) for h in hellos
        ]
        results.startup.chapter_load_train = [float(h["load_train_s"]) for h in hellos]
        results.environment.usable_train = int(hellos[0]["examples"]) if hellos else 0
        results.nginx = measure_nginx(space, preset, root, cache, client)
        results.growth = measure_growth(space, preset, client)
    space.clean_caches()
    return results


def run(preset: Preset, out: Path, work: Path, phases: tuple[str, ...] = PHASES) -> Results:
    """Measure ``phases``, then write ``results.json``, ``results.md`` and ``results.png``
    into ``out`` (keeping the results of the phases not run from the ``results.json`` there)."""
    started = time.perf_counter()
    out.mkdir(parents=True, exist_ok=True)
    space = Workspace(work)
    results = previous(out, preset)
    if "core" in phases:
        core = measure(preset, space)
        core.environment.load_after = list(os.getloadavg())
        core.environment.wall_seconds = round(time.perf_counter() - started, 1)
        results = with_core(results, core)
    if "scaleout" in phases:
        results.scaleout = measure_scaleout(space, preset)
    if "codecs" in phases:
        results.codecs = measure_codecs(4 if preset.name == "full" else 1)
    if "recipes" in phases:
        results.recipes = measure_recipes(space, preset)
    if "trainers" in phases:
        results.trainers = measure_trainers_phase(space, preset)
    if "link" in phases:
        results.link = measure_link(space, preset)
    results.save(out / "results.json")
    render(results, out)
    say(f"done in {time.perf_counter() - started:.0f} s: {out / 'results.md'}")
    return results


CORE_FIELDS = ("environment", "throughput", "startup", "growth", "nginx")


def with_core(results: Results, core: Results) -> Results:
    """``results`` with the core phase's figures (and environment) of ``core``, the
    other phases' kept."""
    return dataclasses.replace(results, **{name: getattr(core, name) for name in CORE_FIELDS})


def previous(out: Path, preset: Preset) -> Results:
    """The results already in ``out`` (of the same preset), else an empty set."""
    path = out / "results.json"
    if path.exists():
        results = Results.load(path)
        if results.environment.preset == preset.name:
            return results
        say(f"{path} is of preset {results.environment.preset}: not kept")
    return Results(environment(preset))


def render(results: Results, out: Path) -> None:
    """Write the report and the plot of ``results`` into ``out``."""
    sections = [
        scaleout_section(results),
        codecs_section(results.codecs),
        recipes_section(results.recipes),
        trainers_section(results),
    ]
    write_report(results, out / "results.md", plot_name="results.png", sections=sections)
    write_plot(results, out / "results.png")
