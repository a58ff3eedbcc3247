import pytest

from geopre.ingest.triplets import make_triplets


def test_adjacent_kept_frames_make_overlapping_triplets():
    assert make_triplets([True] * 5) == [(0, 1, 2), (1, 2, 3), (2, 3, 4)]


def test_a_dropped_frame_breaks_the_chain_by_default():
    kept = [True, True, True, False, True, True, True]
    assert make_triplets(kept) == [(0, 1, 2), (4, 5, 6)]


def test_max_gap_bridges_short_gaps_but_never_a_longer_stop():
    kept = [True, True, False, True, True, False, False, True, True]
    assert make_triplets(kept, max_gap=2) == [(0, 1, 3), (1, 3, 4)]
    assert (4, 7, 8) not in make_triplets(kept, max_gap=2)
    assert (3, 4, 7) in make_triplets(kept, max_gap=3)


def test_too_few_frames_give_nothing():
    assert make_triplets([]) == []
    assert make_triplets([True, True]) == []
    assert make_triplets([False] * 10) == []


def test_max_gap_below_one_is_an_error():
    with pytest.raises(ValueError):
        make_triplets([True] * 3, max_gap=0)
