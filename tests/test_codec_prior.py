"""The prior table: integer frequencies that sum to 2**p, every symbol codable, reproducible."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bpgan.toolkit.codec.prior import (
    PRECISION_BITS,
    PriorError,
    check_prior,
    count_symbols,
    estimate_prior,
    load_prior,
    quantize_frequencies,
    save_prior,
)

counts_rows = st.lists(st.lists(st.integers(0, 10**12), min_size=2, max_size=40).map(tuple), min_size=1, max_size=4)


@settings(max_examples=200, deadline=None)
@given(rows=counts_rows, bits=st.integers(6, 31))
def test_quantized_rows_sum_to_power_of_two_with_every_symbol_codable(rows, bits):
    width = min(len(r) for r in rows)
    counts = np.array([r[:width] for r in rows], dtype=np.int64)
    if width > (1 << bits):
        return
    table = quantize_frequencies(counts, bits)
    assert table.dtype == np.uint32 and table.shape == counts.shape
    assert (table >= 1).all()
    assert (table.astype(np.int64).sum(axis=1) == 1 << bits).all()


@settings(max_examples=100, deadline=None)
@given(rows=counts_rows)
def test_quantized_frequencies_are_within_one_unit_of_the_proportional_share(rows):
    width = min(len(r) for r in rows)
    counts = np.array([r[:width] for r in rows], dtype=object)
    table = quantize_frequencies(counts.astype(np.int64), PRECISION_BITS)
    free = (1 << PRECISION_BITS) - width
    for row, freq in zip(counts.tolist(), table.tolist()):
        total = sum(row) or None
        for k, f in zip(row, freq):
            if total is None:
                continue
            share = k * free // total  # exact integer floor
            assert share + 1 <= f <= share + 2


def test_quantization_is_monotone_in_counts_and_deterministic():
    counts = np.array([[5, 0, 1000, 3, 3, 999_999]])
    a = quantize_frequencies(counts)
    assert np.array_equal(a, quantize_frequencies(counts.copy()))
    order = np.argsort(counts[0], kind="stable")
    assert (np.diff(a[0][order].astype(np.int64)) >= 0).all()


def test_estimate_prior_counts_each_channel_with_add_one_smoothing():
    rng = np.random.default_rng(0)
    batches = [rng.integers(0, 3, size=(2, 3, 4, 5)) for _ in range(3)]  # (N, C, h, w), L=4: symbol 3 unseen
    counts = count_symbols(batches, 3, 4)
    assert counts.sum() == 3 * 2 * 3 * 4 * 5 and (counts[:, 3] == 0).all()
    table = estimate_prior(batches, 3, 4)
    assert np.array_equal(table, quantize_frequencies(counts + 1))
    assert (table[:, 3] > 1).all()  # smoothing: unseen symbols keep real mass


def test_estimate_prior_rejects_wrong_channel_count_and_out_of_range_indices():
    with pytest.raises(PriorError, match="not \\(N, 3"):
        estimate_prior([np.zeros((1, 2, 4, 4), int)], 3, 4)
    with pytest.raises(PriorError, match="outside"):
        estimate_prior([np.full((1, 3, 2, 2), 4)], 3, 4)


def test_prior_round_trips_through_npy_and_bad_tables_are_refused(tmp_path):
    table = quantize_frequencies(np.arange(24).reshape(3, 8))
    save_prior(tmp_path / "prior.npy", table)
    assert np.array_equal(load_prior(tmp_path / "prior.npy"), table)
    bad = table.copy()
    bad[0, 0] += 1
    with pytest.raises(PriorError, match="sum to"):
        check_prior(bad)
    (tmp_path / "junk.npy").write_bytes(b"not numpy")
    with pytest.raises(PriorError, match="not a readable prior"):
        load_prior(tmp_path / "junk.npy")
