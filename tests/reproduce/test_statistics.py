"""The study's statistics against textbook values (references computed with scipy 1.17 / R)."""

import numpy as np
import pytest

from geopre.reproduce.statistics import (beats_prior, bootstrap_gap_interval, comparison_verdict, convergence,
                                         gain_trend, holm, paired_t_test, regularized_beta, t_two_sided_p)


def test_regularized_beta_known_values():
    assert regularized_beta(1.0, 1.0, 0.3) == pytest.approx(0.3)  # uniform CDF
    assert regularized_beta(2.0, 3.0, 0.4) == pytest.approx(0.5248, abs=1e-12)  # 1 - (0.6^4 + 4*0.4*0.6^3)
    assert regularized_beta(0.5, 0.5, 0.5) == pytest.approx(0.5)


@pytest.mark.parametrize("t, df, p", [(2.0, 5, 0.10193947882985835), (4.0621, 9, 0.002833007840390159),
                                      (1.0, 1, 0.5), (0.5, 30, 0.6207230048851272), (-10.0, 3, 0.0021283990584141503)])
def test_student_t_two_sided_p_matches_scipy(t, df, p):
    assert t_two_sided_p(t, df) == pytest.approx(p, rel=1e-9)


def test_paired_t_on_students_sleep_data():
    # Cushny & Peebles via Student (1908), R's `sleep`: t.test(extra ~ group, paired = TRUE)
    # gives t = -4.0621, df = 9, p = 0.002833.
    drug1 = [0.7, -1.6, -0.2, -1.2, -0.1, 3.4, 3.7, 0.8, 0.0, 2.0]
    drug2 = [1.9, 0.8, 1.1, 0.1, -0.1, 4.4, 5.5, 1.6, 4.6, 3.4]
    test = paired_t_test(drug1, drug2)
    assert test.t == pytest.approx(-4.062127683382037)
    assert test.df == 9 and test.p == pytest.approx(0.002832890197384273, rel=1e-9)
    assert test.mean_gap == pytest.approx(-1.58)
    identical = paired_t_test([0.75, 0.5], [0.5, 0.25])  # the same gap every seed: no doubt left
    assert identical.p == 0.0 and identical.t == float("inf")


def test_holm_on_a_textbook_example():
    # sorted 0.005, 0.01, 0.03, 0.04 -> x4, x3, x2, x1 = 0.02, 0.03, 0.06, 0.04 -> monotone 0.02, 0.03, 0.06, 0.06
    assert holm([0.01, 0.04, 0.03, 0.005]) == pytest.approx([0.03, 0.06, 0.06, 0.02])
    assert holm([0.5, 0.9]) == pytest.approx([1.0, 1.0])
    assert holm([]) == []


def test_bootstrap_interval_of_a_constant_gap_is_that_gap_and_a_sign_split_spans_zero():
    base = np.full((5, 20), 0.3)
    assert bootstrap_gap_interval(base, base - 0.1) == pytest.approx((0.1, 0.1))
    rng = np.random.default_rng(1)
    noisy = 0.3 + rng.normal(0, 0.01, (5, 20))
    low, high = bootstrap_gap_interval(noisy, noisy - 0.05 + rng.normal(0, 0.01, (5, 20)))
    assert 0.03 < low < 0.05 < high < 0.07
    # two seeds gain, two lose by as much: the interval must contain 0
    gaps = np.array([[0.1] * 10, [0.1] * 10, [-0.1] * 10, [-0.1] * 10])
    low, high = bootstrap_gap_interval(base[:4, :10], base[:4, :10] - gaps)
    assert low < 0 < high


def test_verdict_needs_both_a_corrected_p_and_an_interval_off_zero():
    assert comparison_verdict(0.01, (0.01, 0.03)) == "held"
    assert comparison_verdict(0.01, (-0.03, -0.01)) == "reversed"
    assert comparison_verdict(0.01, (-0.01, 0.03)) == "not shown"
    assert comparison_verdict(0.06, (0.01, 0.03)) == "not shown"


def test_a_model_must_beat_the_prior_on_abs_rel_and_rmse():
    prior = {"abs_rel": 0.27, "rmse": 6.3}
    assert beats_prior({"abs_rel": 0.2, "rmse": 6.0}, prior)
    assert not beats_prior({"abs_rel": 0.17, "rmse": 7.0}, prior)  # the S rows


def test_convergence_compares_the_last_quarter_with_the_point_before_it():
    steps = [25, 50, 75, 100]
    assert convergence(steps, [0.5, 0.3, 0.25, 0.249], 100) == {"converged": True, "improvement": pytest.approx(0.004)}
    assert convergence(steps, [0.5, 0.3, 0.25, 0.2], 100) == {"converged": False, "improvement": pytest.approx(0.2)}
    assert convergence(steps, [0.5, 0.3, 0.25, 0.3], 100)["converged"] is True  # got worse: nothing left to gain
    assert convergence([100], [0.2], 100) == {"converged": None, "improvement": None}


def test_gain_trend_against_the_peak():
    assert gain_trend([0.02, 0.03, 0.028]) == "persists"
    assert gain_trend([0.04, 0.02, 0.015]) == "shrinks"
    assert gain_trend([0.04, 0.01, 0.0]) == "vanishes"
    assert gain_trend([0.04, 0.01, -0.01]) == "vanishes"
    assert gain_trend([-0.01, 0.0]) == "never showed"
