"""The HABIR toolbox's shallow methods (baselines.lsh, pcah, pca_rr, sh, sklsh, sph, cbe, sp, sgh,
dsh_density): each one's formula checked on fixed inputs against a plain numpy reference written here, their shared
behaviour (codes, seeds, save/load), and each trained through the training script on the bundled MNIST sample,
beating random codes by a clear margin."""

import json

import numpy as np
import pytest

from baselines.cbe import CBERand
from baselines.dsh_density import DSHDensity, balance_score, candidate_pairs
from baselines.lsh import LSH
from baselines.pca_rr import PCARR
from baselines.pcah import PCAH
from baselines.sgh import SGH, transformed_features
from baselines.sh import SH, select_modes
from baselines.sp import SP, sparsify
from baselines.sklsh import SKLSH, neighbour_distance_scale
from baselines.sph import SpH, balanced_radii, centre_forces, overlap_statistics
from saeh.errors import SaehError

from script_helpers import run_script
from test_baselines_shallow import blobs

HASHERS = {"lsh": LSH, "pcah": PCAH, "pca-rr": PCARR, "sh": SH, "sklsh": SKLSH, "sph": SpH, "cbe-rand": CBERand,
           "sp": SP, "sgh": SGH, "dsh-density": DSHDensity}
RANDOM = ("lsh", "pca-rr", "sklsh", "sph", "cbe-rand", "sp", "sgh", "dsh-density")  # (not PCAH, SH)


@pytest.fixture(scope="module")
def data():
    train_x, train_y = blobs(400, seed=1, dim=32)
    query_x, _ = blobs(50, seed=2, dim=32)
    return train_x, train_y, query_x


def covariance(features):
    centred = features - features.mean(axis=0)
    return centred.T @ centred / len(features)


# ---------------------------------------------------------------------------------------------- shared behaviour

@pytest.mark.parametrize("name", HASHERS)
def test_codes_are_the_outputs_above_zero_and_reload_identically(name, data, tmp_path):
    train_x, train_y, query_x = data
    hasher = HASHERS[name](hash_bits=12, seed=3).fit(train_x, train_y)
    projected = hasher.project(query_x)
    assert projected.shape == (50, 12) and projected.dtype == np.float32
    np.testing.assert_array_equal(hasher.encode(query_x), (projected > 0).astype(np.uint8))
    hasher.save(tmp_path / "model.npz")
    loaded = HASHERS[name].load(tmp_path / "model.npz")
    assert loaded.get_config() == hasher.get_config()
    np.testing.assert_array_equal(loaded.project(query_x), projected)
    if name != "sklsh":  # a threshold t near +-sqrt 2 makes an SKLSH bit nearly constant, by design
        train_codes = hasher.encode(train_x)  # every bit is used on the training data
        assert np.all(train_codes.min(axis=0) == 0) and np.all(train_codes.max(axis=0) == 1)


@pytest.mark.parametrize("name", HASHERS)
def test_same_seed_same_codes_and_the_random_ones_change_with_it(name, data):
    train_x, _, query_x = data
    first, second, other = (HASHERS[name](hash_bits=12, seed=seed).fit(train_x).project(query_x)
                            for seed in (3, 3, 4))
    np.testing.assert_array_equal(first, second)
    assert np.array_equal(first, other) == (name not in RANDOM)


@pytest.mark.parametrize("name", ["pcah", "pca-rr", "cbe-rand"])
def test_pca_and_cbe_refuse_more_bits_than_dimensions(name, data):
    with pytest.raises(SaehError, match=f"{name}: hash_bits=33 exceeds the feature dimension 32"):
        HASHERS[name](hash_bits=33).fit(data[0])


def test_sh_takes_more_bits_than_dimensions(data):
    assert SH(hash_bits=40).fit(data[0]).encode(data[2]).shape == (50, 40)


# ------------------------------------------------------------------------------------- each formula, by hand

def test_lsh_is_the_sign_of_gaussian_projections_of_centred_features(data):
    train_x, _, query_x = data
    hasher = LSH(hash_bits=64, seed=0).fit(train_x)
    weights = hasher.state["projection"]
    assert weights.shape == (32, 64)
    assert abs(weights.mean()) < 0.1 and abs(weights.std() - 1.0) < 0.1  # N(0, 1) entries
    np.testing.assert_allclose(hasher.state["mean"], train_x.mean(axis=0), atol=1e-12)
    expected = np.array([[sum((row[d] - train_x[:, d].mean()) * weights[d, bit] for d in range(32))
                          for bit in range(64)] for row in query_x[:3]])
    np.testing.assert_allclose(hasher.project(query_x[:3]), expected, rtol=1e-5, atol=1e-5)
    assert np.all(hasher.project(train_x.mean(axis=0, keepdims=True)) == 0)  # no offset: the mean sits on every plane


def test_pcah_projects_on_the_top_eigenvectors_of_the_training_covariance(data):
    train_x, _, query_x = data
    hasher = PCAH(hash_bits=6).fit(train_x)
    directions = hasher.state["projection"]
    top_values = np.sort(np.linalg.eigvalsh(covariance(train_x)))[::-1][:6]
    np.testing.assert_allclose(covariance(train_x) @ directions, directions * top_values, atol=1e-9)
    np.testing.assert_allclose(hasher.project(query_x), (query_x - train_x.mean(axis=0)) @ directions,
                               rtol=1e-5, atol=1e-5)


def test_pca_rr_rotates_the_pcah_projections_by_a_random_orthogonal_matrix(data):
    train_x, _, query_x = data
    rotated = PCARR(hash_bits=6, seed=1).fit(train_x)
    rotation = rotated.state["rotation"]
    np.testing.assert_allclose(rotation.T @ rotation, np.eye(6), atol=1e-12)
    assert not np.allclose(np.abs(rotation), np.eye(6), atol=0.1)  # a real rotation, not a signed permutation
    pcah = PCAH(hash_bits=6).fit(train_x)
    np.testing.assert_allclose(rotated.project(query_x), pcah.project(query_x) @ rotation, rtol=1e-4, atol=1e-5)


def test_sh_selects_the_lowest_one_dimensional_modes_of_the_box():
    # Ranges 4 and 1.5; omega = k pi / R: dim 0 gives 0.785 k, dim 1 gives 2.094 k. The four lowest after the
    # constant mode: (dim 0, k=1), (dim 0, k=2), (dim 1, k=1), (dim 0, k=3).
    modes = select_modes(np.array([-2.0, -0.75]), np.array([2.0, 0.75]), 4)
    np.testing.assert_array_equal(modes, [[1, 0], [2, 0], [0, 1], [3, 0]])
    # Equal ranges tie: dimension order first (MATLAB's stable sort), the constant mode never kept.
    np.testing.assert_array_equal(select_modes(np.zeros(2), np.ones(2), 3), [[1, 0], [0, 1], [2, 0]])


def test_sh_codes_are_cosines_of_the_selected_modes_along_the_principal_axes():
    # A grid on [0, 4] x [0, 1.5]: its principal axes are the coordinate axes (the wider first, signs positive).
    grid = np.array([[a, b] for a in np.linspace(0, 4, 9) for b in np.linspace(0, 1.5, 7)])
    hasher = SH(hash_bits=4).fit(grid)
    np.testing.assert_allclose(np.abs(hasher.state["directions"]), np.eye(2), atol=1e-12)
    np.testing.assert_array_equal(hasher.state["modes"], [[1, 0], [2, 0], [0, 1], [3, 0]])
    points = np.array([[0.3, 0.2], [1.7, 1.4], [3.9, 0.7]])
    v = (points - grid.mean(axis=0)) @ hasher.state["directions"]
    eps = np.finfo(float).eps
    low = np.array([-2.0, -0.75]) - eps
    extent = np.array([4.0, 1.5]) + 2 * eps
    expected = np.stack([np.cos(k * np.pi * (v[:, d] - low[d]) / extent[d]) for d, k in ((0, 1), (0, 2), (1, 1), (0, 3))],
                        axis=1)
    np.testing.assert_allclose(hasher.project(points), expected, atol=1e-6)


def test_sklsh_scale_is_the_mean_distance_to_the_nth_neighbour():
    line = np.arange(10.0)[:, None]  # 3rd neighbour, the point itself first: 2 at both ends, 1 inside
    assert neighbour_distance_scale(line, 3, 100, np.random.default_rng(0)) == pytest.approx(1.2)


def test_sklsh_is_the_sign_of_thresholded_random_fourier_features(data):
    train_x, _, query_x = data
    hasher = SKLSH(hash_bits=2000, seed=0, gamma=4.0, n_neighbours=5, n_scale_samples=1000).fit(train_x)
    state = hasher.state
    distances = np.sqrt(((train_x[:, None, :] - train_x[None, :, :]) ** 2).sum(axis=2))
    assert state["scale"] == pytest.approx(np.sort(distances, axis=1)[:, 4].mean())  # every point sampled
    assert abs(state["frequencies"].std() - 2.0) < 0.05  # N(0, gamma): std sqrt(4)
    assert 0 <= state["phases"].min() and state["phases"].max() < 2 * np.pi and state["phases"].std() > 1.5
    assert -np.sqrt(2) <= state["thresholds"].min() and state["thresholds"].max() <= np.sqrt(2)
    z = (query_x[:4] - train_x.mean(axis=0)) / state["scale"]
    expected = np.sqrt(2) * np.cos(z @ state["frequencies"] + state["phases"]) + state["thresholds"]
    np.testing.assert_allclose(hasher.project(query_x[:4]), expected, atol=1e-5)


def test_sph_radii_overlaps_and_forces_follow_the_toolbox_loops():
    rng = np.random.default_rng(0)
    distances = rng.random((11, 3))
    radii = balanced_radii(distances)
    assert np.all((distances < radii).sum(axis=0) == 5)  # N // 2 inside
    inside = rng.random((40, 4)) < 0.5
    centres = rng.normal(size=(4, 3))
    overlaps, mean_gap, spread = overlap_statistics(inside)
    pairs = [(i, j) for i in range(4) for j in range(i + 1, 4)]
    counts = [sum(inside[n, i] and inside[n, j] for n in range(40)) for i, j in pairs]
    assert [overlaps[i, j] for i, j in pairs] == counts
    assert mean_gap == pytest.approx(np.mean([abs(c - 10) for c in counts]))
    assert spread == pytest.approx(np.sqrt(np.mean([(c - np.mean(counts)) ** 2 for c in counts])))
    forces = np.zeros_like(centres)
    for i, j in pairs:
        force = 0.5 * (overlaps[i, j] - 10) / 10 * (centres[i] - centres[j])
        forces[i] += force / 4
        forces[j] -= force / 4
    np.testing.assert_allclose(centre_forces(centres, overlaps, 40), forces, atol=1e-12)


def test_sph_fit_ends_balanced_and_codes_are_inside_the_spheres(data):
    train_x, _, query_x = data
    hasher = SpH(hash_bits=8, seed=0).fit(train_x)
    assert hasher.fit_info_["converged"] and hasher.fit_info_["iterations"] >= 1
    codes = hasher.encode(train_x)
    assert np.all(codes.sum(axis=0) == 200)  # half the training points in each sphere
    overlaps = codes.T.astype(int) @ codes
    off_diagonal = overlaps[np.triu_indices(8, k=1)]
    assert np.abs(off_diagonal - 100).mean() <= 0.1 * 100 and off_diagonal.std() <= 0.15 * 100
    centres, radii = hasher.state["centres"], hasher.state["radii"]
    distances = np.sqrt(((query_x[:, None, :] - centres[None]) ** 2).sum(axis=2))
    np.testing.assert_array_equal(hasher.encode(query_x), (distances < radii).astype(np.uint8))
    capped = SpH(hash_bits=8, seed=0, max_iter=1).fit(train_x)
    assert capped.fit_info_["iterations"] == 1


def test_cbe_rand_is_the_sign_of_a_random_circulant_projection_of_flipped_centred_features(data):
    import scipy.linalg

    train_x, _, query_x = data
    hasher = CBERand(hash_bits=10, seed=0).fit(train_x)
    state = hasher.state
    assert len(set(state["kept"])) == 10 and set(np.unique(state["flips"])) == {-1.0, 1.0}
    circulant = scipy.linalg.circulant(state["circulant"])  # first column r: C[i, j] = r[(i - j) mod D]
    np.testing.assert_allclose(circulant[:, 0], state["circulant"])
    z = (query_x - train_x.mean(axis=0)) * state["flips"]
    np.testing.assert_allclose(hasher.project(query_x), (z @ circulant.T)[:, state["kept"]], rtol=1e-5, atol=1e-5)


def sp_reference(features, bits, seed, sparsity=0.9, n_iter=50, beta=1.0):
    """SP.m's loop written out plainly: MATLAB's full svd and its two branches, cov() for the PCA."""
    x = features - features.mean(axis=0)
    dim = x.shape[1]
    sparse = np.random.default_rng(seed).standard_normal((bits, dim))
    codes = np.where(x @ sparse.T > 0, 1.0, -1.0)
    if bits < dim:
        values, vectors = np.linalg.eigh(np.cov(x, rowvar=False))
        pcs = vectors[:, np.argsort(values)[::-1][:bits]]

    def procrustes(inputs, targets):
        u, _, vt = np.linalg.svd(inputs.T @ targets)  # full: u (d, d), v (b, b)
        v = vt.T
        if targets.shape[1] >= inputs.shape[1]:
            v = v[:, : inputs.shape[1]]
        else:
            u = u[:, : targets.shape[1]]
        return v @ u.T

    for _ in range(n_iter + 1):
        targets = (codes + beta * x @ sparse.T) / (1 + beta)
        orthogonal = procrustes(x, targets) if bits >= dim else procrustes(x @ pcs, targets) @ pcs.T
        keep = int(np.ceil(orthogonal.size * (1 - sparsity)))
        threshold = sorted(np.abs(orthogonal).ravel(), reverse=True)[keep - 1]
        sparse = orthogonal.copy()
        sparse[np.abs(sparse) < threshold] = 0
        codes = np.where(x @ orthogonal.T > 0, 1.0, -1.0)
    return sparse


def test_sp_sparsify_keeps_the_largest_entries_and_ties_at_the_threshold():
    matrix = np.array([[0.5, -3.0, 1.0], [-1.0, 0.2, 2.0]])
    # ceil(6 * 0.5) = 3 entries kept: |-3|, |2| and both entries of magnitude 1 (the 3rd largest, tied)
    np.testing.assert_array_equal(sparsify(matrix, 0.5), [[0, -3, 1], [-1, 0, 2]])
    np.testing.assert_array_equal(sparsify(matrix, 0.9), [[0, -3, 0], [0, 0, 0]])  # ceil(0.6) = 1


@pytest.mark.parametrize("bits", [6, 40])  # through the PCA (bits < D) and directly (bits >= D)
def test_sp_matches_the_toolbox_loop_written_out(bits, data):
    train_x, _, query_x = data
    hasher = SP(hash_bits=bits, seed=5, n_iter=10).fit(train_x)
    expected = sp_reference(train_x.astype(np.float64), bits, 5, n_iter=10)
    sparse = hasher.state["projection"].T
    np.testing.assert_allclose(sparse, expected, atol=1e-8)
    assert np.count_nonzero(sparse) == np.ceil(bits * 32 * 0.1 - 1e-9)
    np.testing.assert_allclose(hasher.project(query_x), (query_x - train_x.mean(axis=0)) @ expected.T, atol=1e-5)


def test_sgh_feature_transform_is_the_linearised_gaussian_similarity():
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(5, 3)) * 0.3, rng.normal(size=(5, 3)) * 0.3
    (p_x, _), (_, q_y) = transformed_features(x, 2.0), transformed_features(y, 2.0)
    e = np.e
    for i in range(5):
        fx, fy = np.exp(-x[i] @ x[i] / 2), np.exp(-y[i] @ y[i] / 2)
        expected = 2 * (e - 1 / e) / 2 * fx * fy * (x[i] @ y[i]) + (e + 1 / e) * fx * fy - 1
        assert p_x[i] @ q_y[i] == pytest.approx(expected)
    # e^t is replaced by its chord through t = +-1, (e - 1/e)/2 t + (e + 1/e)/2 with t = 2 x.y / rho: exact there
    unit = np.array([[0.6, 0.8, 0.0]])
    for other in (unit, -unit):
        p, _ = transformed_features(unit, 2.0)
        _, q = transformed_features(other, 2.0)
        assert (p @ q.T).item() == pytest.approx(2 * np.exp(-((unit - other) ** 2).sum() / 2) - 1)


def test_sgh_matches_the_toolbox_sequence_written_out(data):
    import scipy.linalg

    from baselines.sklsh import neighbour_distance_scale

    train_x, _, query_x = data
    bits, n_bases = 5, 40
    hasher = SGH(hash_bits=bits, seed=2, n_bases=n_bases).fit(train_x)
    rng = np.random.default_rng(2)  # the draws in the hasher's order: scale sample, bases, refinement order
    scale = neighbour_distance_scale(train_x, 50, 100, rng)
    z = (train_x - train_x.mean(axis=0)) / scale
    bases = z[rng.choice(len(z), n_bases, replace=False)]
    order = rng.permutation(bits)
    squared = ((z[:, None, :] - bases[None]) ** 2).sum(axis=2)
    kernel = np.exp(-squared / (2 * squared.mean()))
    kernel = kernel - kernel.mean(axis=0)
    norms = np.exp(-(z**2).sum(axis=1) / 2)
    common = np.hstack([np.sqrt(np.e - 1 / np.e) * z * norms[:, None], np.sqrt(np.e + 1 / np.e) * norms[:, None]])
    p, q = np.hstack([common, np.ones((len(z), 1))]), np.hstack([common, -np.ones((len(z), 1))])
    a = bits * (kernel.T @ p) @ (kernel.T @ q).T
    metric = kernel.T @ kernel + 1e-6 * np.eye(n_bases)

    def top(matrix):  # a general (non-symmetric) solver, vector to unit length, largest entry positive
        values, vectors = scipy.linalg.eig(matrix, metric)
        vector = vectors[:, np.argmax(values.real)].real
        vector = vector / np.linalg.norm(vector)
        return vector * np.sign(vector[np.argmax(np.abs(vector))])

    w = np.zeros((n_bases, bits))
    for t in range(bits):
        w[:, t] = top(a)
        v = kernel.T @ np.sign(kernel @ w[:, t])
        a = a - np.outer(v, v)
    for t in order:
        v = kernel.T @ np.sign(kernel @ w[:, t])
        a = a + np.outer(v, v)
        w[:, t] = top(a)
        v = kernel.T @ np.sign(kernel @ w[:, t])
        a = a - np.outer(v, v)
    learned = hasher.state["projection"]
    np.testing.assert_allclose(learned / np.linalg.norm(learned, axis=0), w, atol=1e-6)
    query_z = (query_x - train_x.mean(axis=0)) / scale
    query_kernel = np.exp(-((query_z[:, None, :] - bases[None]) ** 2).sum(axis=2) / (2 * squared.mean()))
    expected = (query_kernel - np.exp(-squared / (2 * squared.mean())).mean(axis=0)) @ learned
    np.testing.assert_allclose(hasher.project(query_x), expected, rtol=1e-4, atol=1e-5)


def test_dsh_density_pairs_neighbouring_centres_and_scores_the_balance_of_their_bisector():
    centres = np.array([[0.0], [1.0], [3.0], [7.0]])
    weights = np.array([0.4, 0.1, 0.2, 0.3])
    # nearest of 0: 1; of 1: 0; of 2: 1 (2 < 4); of 3: 2; as (higher, lower), closest first
    assert candidate_pairs(centres, 1) == [(1, 0), (2, 1), (3, 2)]
    assert balance_score(centres, weights, 1, 0) == pytest.approx(0.4 / 0.6)  # centres 1, 2, 3 beyond x = 0.5
    assert balance_score(centres, weights, 2, 1) == pytest.approx(1.0)  # 3 and 7 beyond x = 2: half the weight
    assert balance_score(centres, weights, 3, 2) == pytest.approx(0.3 / 0.7)


def test_dsh_density_matches_the_toolbox_steps_written_out(data):
    train_x, _, query_x = data
    bits = 4
    hasher = DSHDensity(hash_bits=bits, seed=1).fit(train_x)
    k = 6  # round(1.5 * 4)
    rng = np.random.default_rng(1)
    centres = train_x[np.sort(rng.choice(len(train_x), k, replace=False))].astype(np.float64)
    last = None
    for _ in range(3):  # litekmeans: assign, move; stop when nothing changes (no cluster empties here)
        labels = np.array([np.argmin([((x - c) ** 2).sum() for c in centres]) for x in train_x])
        assert len(set(labels)) == k
        centres = np.array([train_x[labels == j].mean(axis=0) for j in range(k)])
        if last is not None and (labels == last).all():
            break
        last = labels
    weights = np.array([(labels == j).mean() for j in range(k)])
    distance = lambda i, j: ((centres[i] - centres[j]) ** 2).sum()  # noqa: E731
    pairs = set()
    for i in range(k):
        others = sorted((distance(i, j), j) for j in range(k) if j != i)[:3]
        pairs |= {(max(i, j), min(i, j)) for _, j in others}
    scored = []
    for first, second in pairs:
        normal = centres[first] - centres[second]
        mid = (centres[first] + centres[second]) / 2
        share = sum(weights[j] for j in range(k) if centres[j] @ normal > mid @ normal)
        scored.append((-min(share, 1 - share) / max(share, 1 - share), distance(first, second), normal, mid @ normal))
    scored.sort(key=lambda entry: entry[:2])
    np.testing.assert_allclose(hasher.state["normals"], [entry[2] for entry in scored[:bits]], atol=1e-10)
    np.testing.assert_allclose(hasher.state["intercepts"], [entry[3] for entry in scored[:bits]], atol=1e-10)
    expected = query_x @ np.array([entry[2] for entry in scored[:bits]]).T - [entry[3] for entry in scored[:bits]]
    np.testing.assert_allclose(hasher.project(query_x), expected, rtol=1e-5, atol=1e-5)


# --------------------------------------------------------------------------- through the script, on MNIST

# mAP@1000 of 32-bit codes on mnist-sample (raw pixels, seed 0) seen when these were written, beside random codes
# (0.106): LSH 0.381, PCAH 0.399, PCA-RR 0.483, SH 0.416, SKLSH 0.244, SpH 0.427, CBE-rand 0.345,
# SP 0.528, SGH 0.507, DSH-density 0.415.
FLOORS = {"lsh": 0.30, "pcah": 0.30, "pca-rr": 0.40, "sh": 0.33, "sklsh": 0.19, "sph": 0.35, "cbe-rand": 0.27,
          "sp": 0.45, "sgh": 0.43, "dsh-density": 0.34}


@pytest.mark.parametrize("name", HASHERS)
def test_trains_through_the_script_on_mnist_and_beats_random_codes(name, tmp_path, monkeypatch, capsys):
    from saeh.retrieval import map_at_k

    code, _, err = run_script("hash_su_ae_train.py", ["--which-data", "mnist-sample", "--method", name,
                                                     "--hash-bits", "32", "--save-dir", str(tmp_path)],
                              monkeypatch, capsys)
    assert code == 0, err
    run = tmp_path / f"{name}_mnist-sample_32bits"
    with open(run / "scores.json") as handle:
        score = json.load(handle)["map@1000"]
    query, database = np.load(run / "codes" / "query.npz"), np.load(run / "codes" / "database.npz")
    rng = np.random.default_rng(0)
    chance = map_at_k(rng.integers(0, 2, query["hash_bin"].shape), rng.integers(0, 2, database["hash_bin"].shape),
                      query["label"], database["label"], k=1000)
    assert chance < 0.12
    assert score > FLOORS[name] > chance + 0.07, f"{name}: mAP@1000 {score:.3f} vs random codes {chance:.3f}"
