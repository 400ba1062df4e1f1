"""Image-processing functions for pipelines and the demo: plain numpy/scipy, 2D in, 2D out.

Any importable callable can be a pipeline function; these are the ones the demo and the
examples use. Each takes a YX image first and keyword parameters after it.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray
from scipy import ndimage

FloatImage = NDArray[np.float32]


def _as_float(image: NDArray[np.generic]) -> FloatImage:
    return np.asarray(image, dtype=np.float32)


def flatfield_correct(image: NDArray[np.generic], sigma: float = 50.0) -> FloatImage:
    """Divide by a heavily smoothed copy of the image (uneven illumination), keep the mean."""
    data = _as_float(image)
    illumination = ndimage.gaussian_filter(data, sigma=sigma, mode="reflect")
    illumination = np.maximum(illumination, np.float32(1e-6))
    corrected = data / illumination
    corrected *= np.float32(data.mean() / max(float(corrected.mean()), 1e-12))
    return _as_float(corrected)


def subtract_background(image: NDArray[np.generic], radius: int = 15) -> FloatImage:
    """Remove a smooth background: a rolling minimum, smoothed, subtracted (a fast top-hat)."""
    data = _as_float(image)
    size = 2 * int(radius) + 1
    background = ndimage.uniform_filter(ndimage.minimum_filter(data, size=size), size=size)
    return _as_float(np.clip(data - background, 0, None))


def gaussian_blur(image: NDArray[np.generic], sigma: float = 2.0) -> FloatImage:
    """Gaussian smoothing."""
    return _as_float(ndimage.gaussian_filter(_as_float(image), sigma=sigma))


def otsu_threshold(image: NDArray[np.generic], bins: int = 256) -> float:
    """The threshold that maximises the between-class variance of the histogram."""
    data = _as_float(image).ravel()
    counts, edges = np.histogram(data, bins=bins)
    centers = (edges[:-1] + edges[1:]) / 2
    weight_low = np.cumsum(counts)
    weight_high = weight_low[-1] - weight_low
    mean_low = np.cumsum(counts * centers) / np.maximum(weight_low, 1)
    total = (counts * centers).sum()
    mean_high = (total - np.cumsum(counts * centers)) / np.maximum(weight_high, 1)
    between = weight_low * weight_high * (mean_low - mean_high) ** 2
    return float(centers[int(np.argmax(between))])


def threshold_labels(
    image: NDArray[np.generic], method: str = "otsu", min_size: int = 30, value: float = 0.0
) -> NDArray[np.int32]:
    """Label the connected objects above a threshold ('otsu', or 'value' with ``value``)."""
    data = _as_float(image)
    if method == "otsu":
        threshold = otsu_threshold(data)
    elif method == "value":
        threshold = value
    else:
        raise ValueError(f"threshold_labels: method {method!r}: expected 'otsu' or 'value'")
    labels, count = ndimage.label(data > threshold)
    if count and min_size > 1:
        sizes = np.bincount(labels.ravel())
        small = sizes < min_size
        small[0] = False
        labels[small[labels]] = 0
        labels, _ = ndimage.label(labels > 0)
    return np.asarray(labels, dtype=np.int32)
