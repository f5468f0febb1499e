from tailbench.datasets.profiles import exp_sizes, step_sizes, zipf_sizes


def test_zipf_matches_the_paper_k49_profile():
    sizes = zipf_sizes(49)
    assert sizes[:11] == [4800, 1200, 533, 300, 192, 133, 97, 75, 59, 48, 39]
    assert min(sizes) == 5 and sum(sizes) == 7822


def test_zipf_fashion_mnist_profile():
    assert zipf_sizes(10) == [4800, 1200, 533, 300, 192, 133, 97, 75, 59, 48]


def test_ldam_exp_profile_counts():
    assert sum(exp_sizes(10, 5000, 100)) == 12406
    assert sum(exp_sizes(100, 500, 100)) == 10847
    assert sum(exp_sizes(10, 5000, 10)) == 20431
    assert sum(exp_sizes(100, 500, 10)) == 19573
    assert exp_sizes(10, 5000, 100)[0] == 5000 and exp_sizes(10, 5000, 100)[-1] == 50


def test_step_profile():
    assert step_sizes(10, 5000, 100) == [5000] * 5 + [50] * 5
