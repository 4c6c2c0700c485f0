"""The dense-validity rule, the stated resolution and paired intervals, on hand-made accuracies."""

import math

import pytest

from trilevel.reports.noise import (
    EXIT_NOT_LEARNED,
    Validity,
    binomial_sd,
    check_learned,
    learned,
    paired_delta,
    resolution_pts,
    seeds_to_resolve,
)

T90_DOF2 = 2.919986  # Student's t, two-sided 90%, 2 degrees of freedom
T90_DOF1 = 6.313752


def test_validity_rule_every_seed_ten_points_above_chance():
    # chance level: 10 classes, dense at 10-12%
    v = check_learned([0.10, 0.12, 0.11], chance=0.10)
    assert not v.learned and v.threshold == pytest.approx(0.20) and v.mean == pytest.approx(0.11)
    assert check_learned([0.90, 0.92, 0.91], chance=0.10).learned
    # noisy but learned on both seeds (a mean - 3 sd rule would have refused this)
    assert check_learned([0.39, 0.55], chance=0.10).learned
    # one seed took off, two stayed at chance: a coin-flip proxy, whatever the mean says
    v = check_learned([0.95, 0.11, 0.12], chance=0.10)
    assert not v.learned and v.mean > v.threshold
    # chance is the majority-class share, not 1/classes: 60% on a 55%-majority set is not learning
    assert not check_learned([0.60, 0.61, 0.64], chance=0.55).learned
    assert check_learned([0.20], chance=0.10).learned and not check_learned([0.199], chance=0.10).learned
    assert not check_learned([], chance=0.1).learned


def test_validity_round_trips_and_explains_what_to_change():
    v = check_learned([0.1, 0.1], chance=0.1)
    assert Validity.from_dict(v.to_dict()) == v
    text = v.explanation(epochs=3, num_train=1617, num_val=180)
    assert "did not learn" in text and "10.0%" in text and "--epochs" in text and "1,617" in text
    assert "\n" not in text
    assert EXIT_NOT_LEARNED not in (0, 1, 2, 130)


def test_trial_learned_threshold():
    assert learned(0.25, 0.20) and learned(0.20, 0.20) and not learned(0.19, 0.20)
    assert not learned(None, 0.2)
    assert learned(0.0, None)  # no verdict yet: nothing is excluded


def test_resolution_known_answers():
    # sd 2 points over 3 seeds, comparing means over 3 paired seeds each: t * sqrt(2) * sd / sqrt(3)
    assert resolution_pts([0.90, 0.92, 0.94], num_val=None) == pytest.approx(
        T90_DOF2 * math.sqrt(2) * 2 / math.sqrt(3), rel=1e-5)
    # one run per configuration (the search's own trials)
    assert resolution_pts([0.90, 0.92, 0.94], None, n=1) == pytest.approx(T90_DOF2 * math.sqrt(2) * 2, rel=1e-5)
    # identical seeds do not mean zero noise: the validation set's binomial error is the floor
    assert binomial_sd(0.9, 100) == pytest.approx(0.03)
    assert resolution_pts([0.9, 0.9, 0.9], num_val=100) == pytest.approx(
        T90_DOF2 * math.sqrt(2) * 3 / math.sqrt(3), rel=1e-5)
    # two seeds: one degree of freedom, a much wider interval
    assert resolution_pts([0.90, 0.92], None) == pytest.approx(
        T90_DOF1 * math.sqrt(2) * 100 * math.sqrt(2e-4) / math.sqrt(2), rel=1e-5)
    assert resolution_pts([], 100) is None


def test_seeds_to_resolve_a_budget():
    from scipy.stats import t

    accs = [0.90, 0.92, 0.94]  # 2 points of seed sd
    n = seeds_to_resolve(1.0, accs, None)

    def width(k):
        return t.ppf(0.95, k - 1) * math.sqrt(2) * 2 / math.sqrt(k)

    assert width(n) <= 1.0 < width(n - 1)  # the smallest such n, t with n - 1 degrees of freedom
    assert 20 < n < 40  # about (1.645 * sqrt(2) * 2)^2 = 22 plus the small-sample t penalty
    assert seeds_to_resolve(0.0, [0.9], None) is None
    assert seeds_to_resolve(50.0, accs, None) == 2


def test_paired_delta_known_answers():
    d = paired_delta([0.85, 0.87, 0.89], [0.90, 0.91, 0.92])
    assert d.pairs == 3 and d.delta_pts == pytest.approx(-4.0)
    half = T90_DOF2 * 1.0 / math.sqrt(3)  # sd of the differences (-5, -4, -3) is 1 point
    assert d.ci_pts == pytest.approx((-4.0 - half, -4.0 + half), rel=1e-5)
    assert not d.excludes_drop(0.5)  # a drop of up to 5.7 points is possible
    # pairs are by seed: extra runs without a dense partner are ignored
    assert paired_delta([0.9, 0.9, 0.5], [0.9, 0.9]).pairs == 2
    # a paired sd of zero on few seeds is floored by the validation set
    d = paired_delta([0.90, 0.90], [0.90, 0.90], num_val=100)
    assert d.delta_pts == 0 and d.ci_pts[1] == pytest.approx(T90_DOF1 * math.sqrt(2) * 3 / math.sqrt(2), rel=1e-5)
    # one pair: the interval comes from dense's spread
    d = paired_delta([0.88], [0.90, 0.92, 0.94])
    assert d.ci_pts[1] - d.delta_pts == pytest.approx(resolution_pts([0.90, 0.92, 0.94], None, n=1))
    assert paired_delta([], [0.9]) is None
    assert paired_delta([0.95, 0.96, 0.97], [0.90, 0.91, 0.92]).excludes_drop(0.5)


def test_validity_bar_never_exceeds_certainty():
    v = check_learned([0.96, 0.97], chance=0.90)  # a 90%-majority validation set
    assert v.threshold == pytest.approx(0.95) and v.learned
    assert not check_learned([0.92, 0.97], chance=0.90).learned
