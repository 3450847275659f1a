"""GIST descriptors (baselines.gist) against a transcription of LMgist.m's steps, one image at a time with MATLAB's
own index conventions (1-based ranges, meshgrid then fftshift, padarray 'symmetric', fix(linspace)), and against
what the filters must see in gratings of known orientation and frequency."""

import numpy as np
import pytest

from baselines.gist import gist_descriptors
from saeh.errors import SaehError


def matlab_fftshift(array):
    # MATLAB's fftshift moves the centre by floor(n/2); numpy's fftshift does the same.
    return np.fft.fftshift(array)


def matlab_meshgrid(n):
    values = np.arange(-n / 2, n / 2)  # -n/2:n/2-1
    return np.meshgrid(values, values)


def reference_create_gabor(orientations, n):
    params = []
    for i, count in enumerate(orientations, start=1):
        for j in range(1, count + 1):
            params.append((.35, .3 / (1.85 ** (i - 1)), 16 * count ** 2 / 32 ** 2, np.pi / count * (j - 1)))
    fx, fy = matlab_meshgrid(n)
    fr = matlab_fftshift(np.sqrt(fx ** 2 + fy ** 2))
    t = matlab_fftshift(np.angle(fx + 1j * fy))
    filters = np.zeros((n, n, len(params)))
    for index, param in enumerate(params):
        tr = t + param[3]
        tr = tr + 2 * np.pi * (tr < -np.pi) - 2 * np.pi * (tr > np.pi)
        filters[:, :, index] = np.exp(-10 * param[0] * (fr / n / param[1] - 1) ** 2 - 2 * param[2] * np.pi * tr ** 2)
    return filters


def symmetric_indices(length, before, after):
    # padarray's 'symmetric' index map: the sequence 1..n, n..1 repeated (period 2n), read from -before on.
    mirror = np.concatenate([np.arange(length), np.arange(length)[::-1]])
    return mirror[np.mod(np.arange(-before, length + after), 2 * length)]


def padarray_symmetric(image, before, after):
    rows = symmetric_indices(image.shape[0], before, after)
    columns = symmetric_indices(image.shape[1], before, after)
    return image[rows][:, columns]


def reference_prefilt(image, fc=4):
    w = 5
    s1 = fc / np.sqrt(np.log(2))
    image = np.log(image + 1)
    image = padarray_symmetric(image, w, w)
    sn, sm = image.shape
    n = max(sn, sm)
    n = n + n % 2
    image = image[symmetric_indices(sn, 0, n - sn)][:, symmetric_indices(sm, 0, n - sm)]  # 'post' padding
    fx, fy = matlab_meshgrid(n)
    gf = matlab_fftshift(np.exp(-(fx ** 2 + fy ** 2) / (s1 ** 2)))
    output = image - np.real(np.fft.ifft2(np.fft.fft2(image) * gf))
    localstd = np.sqrt(np.abs(np.fft.ifft2(np.fft.fft2(output ** 2) * gf)))
    output = output / (.2 + localstd)
    return output[w:sn - w, w:sm - w]  # output(w+1:sn-w, w+1:sm-w)


def reference_down_n(x, n):
    nx = np.fix(np.linspace(0, x.shape[0], n + 1)).astype(int)
    ny = np.fix(np.linspace(0, x.shape[1], n + 1)).astype(int)
    y = np.zeros((n, n))
    for xx in range(1, n + 1):
        for yy in range(1, n + 1):
            y[xx - 1, yy - 1] = x[nx[xx - 1]:nx[xx], ny[yy - 1]:ny[yy]].mean()
    return y


def reference_lmgist(image, orientations=(8, 8, 8, 8), blocks=4, be=32):
    image = np.asarray(image, dtype=np.float64)
    if image.ndim == 3:
        image = image.mean(axis=2)
    image = image - image.min()
    image = 255 * image / max(1, image.max())
    output = reference_prefilt(image)
    filters = reference_create_gabor(orientations, image.shape[0] + 2 * be)
    ny, nx = filters.shape[:2]
    padded = padarray_symmetric(output, be, be)
    spectrum = np.fft.fft2(padded)
    g = []
    for index in range(filters.shape[2]):
        ig = np.abs(np.fft.ifft2(spectrum * filters[:, :, index]))[be:ny - be, be:nx - be]
        g.extend(reference_down_n(ig, blocks).reshape(-1, order="F"))  # reshape(v, [W N]): column-major
    return np.array(g)


@pytest.mark.parametrize("shape, dtype", [((3, 32, 32, 3), np.uint8), ((2, 28, 28), np.float32),
                                          ((2, 20, 20, 1), np.float64)])
def test_descriptors_match_the_lmgist_transcription(shape, dtype):
    rng = np.random.default_rng(sum(shape))
    images = (rng.integers(0, 256, shape) if dtype == np.uint8 else rng.random(shape)).astype(dtype)
    found = gist_descriptors(images)
    assert found.shape == (shape[0], 512) and found.dtype == np.float32
    for image, row in zip(images, found):
        expected = reference_lmgist(image[..., 0] if image.ndim == 3 and image.shape[2] == 1 else image)
        np.testing.assert_allclose(row, expected, rtol=1e-5, atol=1e-6)


def test_other_scales_orientations_and_blocks_match_the_transcription():
    rng = np.random.default_rng(5)
    images = rng.integers(0, 256, (2, 24, 24)).astype(np.uint8)
    found = gist_descriptors(images, orientations=(6, 4, 2), blocks=3, chunk_images=1)
    assert found.shape == (2, 12 * 9)
    for image, row in zip(images, found):
        np.testing.assert_allclose(row, reference_lmgist(image, (6, 4, 2), 3), rtol=1e-5, atol=1e-6)


def orientation_energy(image):
    """Each (scale, orientation)'s mean over the blocks."""
    return gist_descriptors(image[None]).reshape(4, 8, 16).mean(axis=2)


def test_a_grating_excites_the_filter_of_its_orientation_and_frequency():
    side = 32
    x = np.arange(side)
    # 4 cycles across the image: 4 / 96 cycles a pixel of the padded image's grid lies between scale 1's peak
    # (0.3 / 1.85 = 0.162 of n... per padded pixel: 0.162 * 96 / 96) and scale 2's; the energy must peak at one of them.
    across_columns = np.tile(128 + 100 * np.sin(2 * np.pi * 4 * x / side), (side, 1))
    energy = orientation_energy(across_columns)
    scale, orientation = np.unravel_index(energy.argmax(), energy.shape)
    assert orientation == 0 and scale in (1, 2)
    energy = orientation_energy(across_columns.T)  # the same grating turned by 90 degrees
    assert np.unravel_index(energy.argmax(), energy.shape)[1] == 4  # orientation pi * 4 / 8
    # A finer grating peaks at a finer scale (scale 0 is the finest).
    fine = orientation_energy(np.tile(128 + 100 * np.sin(2 * np.pi * 12 * x / side), (side, 1)))
    assert np.unravel_index(fine.argmax(), fine.shape)[0] < scale


def test_only_relative_intensities_matter_and_a_flat_image_is_finite():
    rng = np.random.default_rng(1)
    image = rng.integers(0, 256, (1, 16, 16)).astype(np.float64)
    np.testing.assert_allclose(gist_descriptors(image), gist_descriptors(image * 0.5 + 7), rtol=1e-5)
    assert np.isfinite(gist_descriptors(np.zeros((1, 16, 16)))).all()


@pytest.mark.parametrize("images, message", [
    (np.zeros((2, 16, 12)), "square images"),
    (np.zeros((16, 16)), "square images"),
    (np.full((1, 16, 16), np.nan), "finite numeric"),
])
def test_bad_images_are_refused(images, message):
    with pytest.raises(SaehError, match=message):
        gist_descriptors(images)


def test_bad_settings_are_refused():
    with pytest.raises(SaehError, match="orientations"):
        gist_descriptors(np.zeros((1, 16, 16)), orientations=(8, 0))
    with pytest.raises(SaehError, match="blocks"):
        gist_descriptors(np.zeros((1, 8, 8)), blocks=9)


@pytest.mark.slow  # 23 CPU-s: the script, GIST of 700 images, ITQ
def test_a_shallow_method_hashes_gist_through_the_script(mnist_subset, monkeypatch, capsys, tmp_path):
    """--features gist: the descriptors go to the shallow method and run.json names them. On the whole bundled
    sample (ITQ, 32 bits, seed 0, 2026-12-08) mAP@1000 was 0.6454 on GIST against 0.5616 on raw pixels (random codes
    about 0.105; DH on GIST collapsed to 0.106, RESULTS.md "DH's collapse"); here its first 600 training and 100 test
    images: 0.477 against 0.110 for random codes."""
    import json

    from script_helpers import trained_map_and_chance

    run_dir = str(tmp_path / "itq-gist")
    learned, chance = trained_map_and_chance(["--method", "itq", "--which-data", mnist_subset(600, 100),
                                              "--features", "gist"], monkeypatch, capsys, run_dir)
    with open(f"{run_dir}/run.json") as handle:
        assert json.load(handle)["features"] == "GIST descriptors (baselines.gist)"
    assert learned > chance + 0.25, (learned, chance)
