"""Sampling: hashing, the chapter's filter, epoch order, batch cutting."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from service.errors import NotFoundError, NoUsableSampleError
from service.params import SEED_LIMIT, CropSpec
from service.sampling import (
    batch_indices,
    epoch_order,
    mix64,
    num_batches,
    pick_index,
    sample_uniforms,
    sample_uniforms_many,
    usable_indices,
)
from tests.service.memsource import random_source

SEEDS = st.integers(0, SEED_LIMIT - 1)
EPOCHS = st.integers(0, SEED_LIMIT - 1)
FAST = settings(max_examples=60, deadline=None)


def test_mix64_is_splitmix64() -> None:
    # The published splitmix64 outputs for state 0: mix(k * golden), k = 1, 2, 3.
    golden = np.uint64(0x9E3779B97F4A7C15)
    states = np.arange(1, 4, dtype=np.uint64) * golden
    expected = [0xE220A8397B1DCDAF, 0x6E789E6AA1B965F4, 0x06C45D188009454F]
    assert mix64(states).tolist() == expected


@FAST
@given(seed=SEEDS, epoch=EPOCHS, index=st.integers(0, 2**40), k=st.integers(1, 8))
def test_uniforms_are_in_unit_interval_and_repeatable(
    seed: int, epoch: int, index: int, k: int
) -> None:
    u = sample_uniforms(seed, epoch, index, k)
    assert u.shape == (k,)
    assert u.dtype == np.float64
    assert ((u >= 0.0) & (u < 1.0)).all()
    np.testing.assert_array_equal(u, sample_uniforms(seed, epoch, index, k))


def test_uniforms_differ_by_seed_epoch_and_index() -> None:
    base = sample_uniforms(7, 3, 11, 4)
    for other in [(8, 3, 11), (7, 4, 11), (7, 3, 12)]:
        assert not np.array_equal(base, sample_uniforms(*other, 4))


def test_uniforms_many_matches_single() -> None:
    indices = np.array([0, 5, 99, 3], dtype=np.int64)
    many = sample_uniforms_many(1, 2, indices, 3)
    for row, index in zip(many, indices.tolist(), strict=True):
        np.testing.assert_array_equal(row, sample_uniforms(1, 2, index, 3))


def test_uniforms_look_uniform() -> None:
    u = sample_uniforms_many(0, 0, np.arange(20_000, dtype=np.int64), 2).ravel()
    counts = np.histogram(u, bins=10, range=(0.0, 1.0))[0]
    assert abs(u.mean() - 0.5) < 0.01
    assert counts.min() > 3600
    assert counts.max() < 4400


SIZES = st.lists(st.tuples(st.integers(1, 40), st.integers(1, 40)), min_size=1, max_size=30)


@FAST
@given(sizes=SIZES, height=st.integers(1, 40), width=st.integers(1, 40))
def test_usable_is_the_chapters_filter(
    sizes: list[tuple[int, int]], height: int, width: int
) -> None:
    source = random_source(sizes)
    expected = [i for i, (h, w) in enumerate(sizes) if h >= height and w >= width]
    crop = CropSpec(height, width)
    if expected:
        assert usable_indices(source, crop).tolist() == expected
    else:
        with pytest.raises(NoUsableSampleError, match="small=pad"):
            usable_indices(source, crop)
    padded = usable_indices(source, CropSpec(height, width, small="pad"))
    assert padded.tolist() == list(range(len(sizes)))


@pytest.mark.parametrize(
    ("height", "width", "parameter", "hint"),
    [(50, 5, "height", "tallest is 30"), (20, 50, "width", "at most 10 wide")],
)
def test_no_usable_sample_names_the_parameter(
    height: int, width: int, parameter: str, hint: str
) -> None:
    source = random_source([(30, 10), (10, 40)])
    with pytest.raises(NoUsableSampleError) as info:
        usable_indices(source, CropSpec(height, width))
    assert info.value.parameter == parameter
    assert hint in info.value.detail
    assert f"{height} x {width}" in info.value.detail


def test_usable_is_cached_and_read_only() -> None:
    source = random_source([(10, 10), (5, 5), (20, 20)])
    first = usable_indices(source, CropSpec(8, 8))
    assert usable_indices(source, CropSpec(8, 8)) is first
    assert not first.flags.writeable
    assert usable_indices(random_source([(5, 5), (10, 10)]), CropSpec(8, 8)).tolist() == [1]


@FAST
@given(n=st.integers(0, 300), seed=SEEDS, epoch=EPOCHS)
def test_epoch_order_is_a_permutation(n: int, seed: int, epoch: int) -> None:
    usable = np.arange(0, 3 * n, 3, dtype=np.int64)
    order = epoch_order(usable, seed, epoch, shuffle=True)
    assert sorted(order.tolist()) == usable.tolist()
    np.testing.assert_array_equal(order, epoch_order(usable.copy(), seed, epoch, shuffle=True))


@FAST
@given(seed=SEEDS, epoch=st.integers(0, 2**40))
def test_epoch_order_changes_with_seed_and_epoch(seed: int, epoch: int) -> None:
    usable = np.arange(40, dtype=np.int64)
    order = epoch_order(usable, seed, epoch, shuffle=True)
    assert not np.array_equal(order, epoch_order(usable, seed, epoch + 1, shuffle=True))
    assert not np.array_equal(order, epoch_order(usable, seed ^ 1, epoch, shuffle=True))
    assert not np.array_equal(order, usable)


def test_relative_order_does_not_depend_on_the_usable_set() -> None:
    everything = epoch_order(np.arange(100, dtype=np.int64), 5, 1, shuffle=True)
    subset = np.arange(0, 100, 7, dtype=np.int64)
    expected = [i for i in everything.tolist() if i % 7 == 0]
    assert epoch_order(subset, 5, 1, shuffle=True).tolist() == expected


def test_no_shuffle_keeps_split_order() -> None:
    usable = np.array([1, 4, 9], dtype=np.int64)
    assert epoch_order(usable, 3, 3, shuffle=False).tolist() == [1, 4, 9]


@pytest.mark.parametrize(
    ("n", "batch_size", "drop_last", "expected"),
    [(0, 4, True, 0), (0, 4, False, 0), (3, 4, True, 0), (3, 4, False, 1), (8, 4, True, 2),
     (9, 4, True, 2), (9, 4, False, 3), (1114, 64, True, 17), (1114, 64, False, 18)],
)  # fmt: skip
def test_num_batches(n: int, batch_size: int, drop_last: bool, expected: int) -> None:
    assert num_batches(n, batch_size, drop_last) == expected


@FAST
@given(n=st.integers(0, 200), batch_size=st.integers(1, 70), drop_last=st.booleans())
def test_batches_cover_the_epoch(n: int, batch_size: int, drop_last: bool) -> None:
    order = epoch_order(np.arange(n, dtype=np.int64), 1, 2, shuffle=True)
    total = num_batches(n, batch_size, drop_last)
    seen = [
        i for b in range(total) for i in batch_indices(order, batch_size, b, drop_last).tolist()
    ]
    assert len(seen) == len(set(seen))
    if drop_last:
        assert len(seen) == n - n % batch_size
        assert all(
            len(batch_indices(order, batch_size, b, True)) == batch_size for b in range(total)
        )
    else:
        assert sorted(seen) == list(range(n))


@pytest.mark.parametrize(("batch", "message"), [(-1, r"0\.\.2"), (3, r"0\.\.2"), (99, r"0\.\.2")])
def test_batch_out_of_range(batch: int, message: str) -> None:
    order = np.arange(10, dtype=np.int64)
    with pytest.raises(NotFoundError, match=message):
        batch_indices(order, 3, batch, drop_last=True)


def test_no_batches_says_why() -> None:
    with pytest.raises(NotFoundError, match="no batches"):
        batch_indices(np.arange(3, dtype=np.int64), 4, 0, drop_last=True)


@FAST
@given(seed=SEEDS, epoch=EPOCHS)
def test_pick_index_is_usable(seed: int, epoch: int) -> None:
    usable = np.array([2, 3, 5, 7, 11], dtype=np.int64)
    assert pick_index(usable, seed, epoch) in usable.tolist()
    assert pick_index(usable, seed, epoch) == pick_index(usable, seed, epoch)


def test_pick_index_spreads() -> None:
    usable = np.arange(10, dtype=np.int64)
    assert len({pick_index(usable, seed, 0) for seed in range(200)}) == 10
