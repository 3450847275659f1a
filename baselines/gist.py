"""GIST descriptors (Oliva & Torralba, "Modeling the shape of the scene: a holistic representation of the spatial
envelope", IJCV 2001), computed as Torralba's reference code `LMgist.m` computes them, for the methods whose papers
hash GIST (DH and SDH of Liong et al. use the 512-d GIST of CIFAR-10).

Per image, as LMgist does it (our numpy code, written from its steps):
1. grey: the mean of the colour channels; intensities shifted to a minimum of 0 and scaled to a maximum of 255
   (divided by max(1, max), so a flat image stays 0). The image keeps its own size (LMgist resizes a file to
   `imageSize`; for an array it takes the array's size, as here).
2. prefilter (`prefilter`): log(1 + I), mirrored padding of 5 pixels (then to an even square), minus its Gaussian
   low-pass (exp(-|f|^2 / s^2), s = fc / sqrt(ln 2), fc = 4 cycles per image), divided by 0.2 + the local standard
   deviation (the root of the same low-pass of the squared output); the padding cropped off.
3. a bank of Gabor-like transfer functions in the Fourier domain (`gabor_bank`): scales s = 0, 1, ... with
   `orientations[s]` orientations each; filter (s, k) is exp(-3.5 (r / (n f_s) - 1)^2 - 2 pi b_s theta^2), r the
   radial frequency, theta the angle from orientation pi k / orientations[s] (wrapped to [-pi, pi]), with
   f_s = 0.3 / 1.85^s and b_s = orientations[s]^2 / 64, on the image padded by 32 mirrored pixels on every side
   (n = side + 64).
4. each filter's response magnitude |ifft2(fft2(I) G)|, cropped back to the image, averaged over a `blocks` x
   `blocks` grid of blocks whose edges are fix(linspace(0, side, blocks + 1)); the descriptor lists, filter by
   filter, the block averages in column-major order (down the first column of blocks first): 4 scales x 8
   orientations x 16 blocks = 512 numbers for LMgist's defaults.

The reference's colour variant (Lear's C code, 960-d) is not this one; LMgist averages the channels first.
"""

import numpy as np

from saeh import validation
from saeh.errors import SaehError

ORIENTATIONS = (8, 8, 8, 8)  # orientations per scale, finest scale first (LMgist's default)
BLOCKS = 4  # blocks per side of the averaging grid
PREFILTER_CYCLES = 4  # fc_prefilt: the low-pass's width, in cycles per image
BOUNDARY = 32  # mirrored padding around the image before filtering
PREFILTER_PAD = 5
CHUNK_IMAGES = 256  # images filtered at once (each chunk holds a few complex (chunk, n, n) arrays)


def frequency_grid(n):
    """(fx, fy): the integer frequencies -n/2 .. n/2 - 1 along columns (fx) and rows (fy), moved so that frequency 0
    is at index 0, the layout of numpy's fft2 (MATLAB's fftshift of meshgrid(-n/2:n/2-1))."""
    axis = np.arange(-(n // 2), n - n // 2, dtype=np.float64)
    fx, fy = np.meshgrid(axis, axis)
    return np.fft.ifftshift(fx), np.fft.ifftshift(fy)


def gabor_bank(orientations, n):
    """(len(filters), n, n) transfer functions of the filter bank for an n x n padded image, in fft2 layout."""
    fx, fy = frequency_grid(n)
    radius, angle = np.hypot(fx, fy), np.arctan2(fy, fx)
    bank = []
    for scale, count in enumerate(orientations):
        peak, angular = 0.3 / 1.85 ** scale, 16.0 * count ** 2 / 32.0 ** 2
        for k in range(count):
            theta = angle + np.pi * k / count
            theta = theta + 2 * np.pi * (theta < -np.pi) - 2 * np.pi * (theta > np.pi)
            bank.append(np.exp(-10 * 0.35 * (radius / n / peak - 1) ** 2 - 2 * angular * np.pi * theta ** 2))
    return np.stack(bank)


def grey_0_255(images):
    """(N, H, W[, C]) images -> (N, H, W) float64: the channels' mean, each image shifted to minimum 0 and scaled to
    a maximum of 255 (divided by max(1, its maximum))."""
    grey = np.asarray(images, dtype=np.float64)
    if grey.ndim == 4:
        grey = grey.mean(axis=3)
    grey = grey - grey.min(axis=(1, 2), keepdims=True)
    return 255.0 * grey / np.maximum(1.0, grey.max(axis=(1, 2), keepdims=True))


def prefilter(images, cycles=PREFILTER_CYCLES):
    """(N, H, W) grey images in [0, 255] -> (N, H, W): whitened and locally contrast-normalised (step 2 above)."""
    pad = PREFILTER_PAD
    padded = np.pad(np.log1p(images), ((0, 0), (pad, pad), (pad, pad)), mode="symmetric")
    rows, columns = padded.shape[1:]
    n = max(rows, columns)
    n += n % 2
    padded = np.pad(padded, ((0, 0), (0, n - rows), (0, n - columns)), mode="symmetric")
    fx, fy = frequency_grid(n)
    low_pass = np.exp(-(fx ** 2 + fy ** 2) / (cycles / np.sqrt(np.log(2))) ** 2)
    output = padded - np.real(np.fft.ifft2(np.fft.fft2(padded) * low_pass))
    local_std = np.sqrt(np.abs(np.fft.ifft2(np.fft.fft2(output ** 2) * low_pass)))
    output = output / (0.2 + local_std)
    return output[:, pad:rows - pad, pad:columns - pad]


def block_edges(side, blocks):
    """MATLAB's fix(linspace(0, side, blocks + 1)): the block boundaries along one side."""
    return np.fix(np.linspace(0, side, blocks + 1)).astype(int)


def block_means(responses, blocks):
    """(N, H, W) -> (N, blocks * blocks): the mean of each block, column-major (block (row r, column c) at
    r + blocks * c)."""
    rows, columns = block_edges(responses.shape[1], blocks), block_edges(responses.shape[2], blocks)
    means = np.empty((len(responses), blocks, blocks))
    for r in range(blocks):
        for c in range(blocks):
            means[:, r, c] = responses[:, rows[r]:rows[r + 1], columns[c]:columns[c + 1]].mean(axis=(1, 2))
    return means.transpose(0, 2, 1).reshape(len(responses), blocks * blocks)


def gist_descriptors(images, orientations=ORIENTATIONS, blocks=BLOCKS, prefilter_cycles=PREFILTER_CYCLES,
                     chunk_images=CHUNK_IMAGES):
    """(N, S, S[, C]) square images (uint8 in 0..255 or floats; only their relative intensities matter: each image
    is rescaled to [0, 255]) -> (N, sum(orientations) * blocks^2) float32 GIST descriptors."""
    array = np.asarray(images)
    if array.ndim not in (3, 4) or len(array) == 0 or array.shape[1] != array.shape[2]:
        raise SaehError(f"GIST needs square images, (N, S, S) or (N, S, S, C) with N >= 1; got shape {array.shape}")
    if not np.issubdtype(array.dtype, np.number) or not np.isfinite(array).all():
        raise SaehError(f"GIST needs finite numeric images; got dtype {array.dtype}")
    if not orientations or any(validation.positive_int(count, "orientations") != count for count in orientations):
        raise SaehError(f"orientations must be positive integers, one per scale; got {orientations!r}")
    blocks = validation.positive_int(blocks, "blocks")
    side = array.shape[1]
    if blocks > side:
        raise SaehError(f"blocks ({blocks}) must not exceed the image side ({side})")
    n = side + 2 * BOUNDARY
    bank = gabor_bank(orientations, n)
    descriptors = np.empty((len(array), len(bank) * blocks * blocks), np.float32)
    for start in range(0, len(array), chunk_images):
        grey = prefilter(grey_0_255(array[start:start + chunk_images]), prefilter_cycles)
        spectrum = np.fft.fft2(np.pad(grey, ((0, 0), (BOUNDARY, BOUNDARY), (BOUNDARY, BOUNDARY)), mode="symmetric"))
        parts = [block_means(np.abs(np.fft.ifft2(spectrum * transfer))[:, BOUNDARY:n - BOUNDARY,
                                                                          BOUNDARY:n - BOUNDARY], blocks)
                 for transfer in bank]
        descriptors[start:start + len(grey)] = np.concatenate(parts, axis=1)
    return descriptors
