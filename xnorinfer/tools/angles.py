"""The high-dimensional geometry of binarization (Anderson & Berg, ICLR 2018, arXiv:1705.07199).

For x ~ N(0, I_d) the cosine of the angle between x and sign(x) is C = sum|x_i| / (|x| sqrt(d)).
Writing x = r u with u uniform on the sphere, independent of r:
    E[C]   = sqrt(d) E|u_1| = sqrt(d) Gamma(d/2) / (sqrt(pi) Gamma((d+1)/2))      (exact)
    E[C^2] = (1 + (d - 1) 2/pi) / d                                             (exact: E|u_1 u_2| = 2/(pi d))
so E[C] -> sqrt(2/pi) and the angle concentrates at arccos(sqrt(2/pi)) = 37.0 degrees as d grows.
The expected angle for finite d uses the second-order delta method on arccos around E[C]
(error O(1/d^2)); its spread is |arccos'(E C)| sd(C).

Ternary x -> sign(x) 1[|x| > t]: for a given vector the best support of size k is the k largest |x_i|,
so the optimal ternary angle is exact: max_k (sum of the k largest |x_i|) / (|x| sqrt(k)).  For Gaussian
x and large d the cosine at threshold t is sqrt(2) phi(t) / sqrt(1 - Phi(t)), maximised numerically.
"""
import math

import numpy as np

LIMIT_DEG = math.degrees(math.acos(math.sqrt(2 / math.pi)))  # 37.0 degrees


def expected_cos(d):
    d = float(d)
    return math.sqrt(d) * math.exp(math.lgamma(d / 2) - math.lgamma((d + 1) / 2)) / math.sqrt(math.pi)


def cos_variance(d):
    mean = expected_cos(d)
    return max((1 + (d - 1) * 2 / math.pi) / d - mean * mean, 0.0)


def expected_angle_deg(d):
    """E[angle(x, sign(x))] in degrees for x ~ N(0, I_d), and its standard deviation."""
    mu, var = expected_cos(d), cos_variance(d)
    one = max(1 - mu * mu, 1e-300)
    second = -mu / one ** 1.5  # d^2/dc^2 arccos(c)
    mean = math.acos(min(mu, 1.0)) + 0.5 * second * var
    sd = math.sqrt(var / one)
    return math.degrees(mean), math.degrees(sd)


def binary_angles_deg(rows):
    """Angle between each row and its sign, in degrees (rows: (n, d))."""
    rows = np.asarray(rows, np.float64)
    norms = np.linalg.norm(rows, axis=1)
    d = rows.shape[1]
    with np.errstate(invalid="ignore", divide="ignore"):
        cos = np.abs(rows).sum(axis=1) / (norms * math.sqrt(d))
    return np.degrees(np.arccos(np.clip(cos[norms > 0], -1, 1)))


def ternary_angles_deg(rows):
    """Angle between each row and its best ternary approximation (exact: best support = top-k |x|)."""
    rows = np.abs(np.asarray(rows, np.float64))
    norms = np.linalg.norm(rows, axis=1)
    top = -np.sort(-rows, axis=1)
    k = np.arange(1, rows.shape[1] + 1)
    with np.errstate(invalid="ignore", divide="ignore"):
        best = (np.cumsum(top, axis=1) / np.sqrt(k)).max(axis=1) / norms
    return np.degrees(np.arccos(np.clip(best[norms > 0], -1, 1)))


def _phi(t):
    return math.exp(-t * t / 2) / math.sqrt(2 * math.pi)


def gaussian_ternary_optimum():
    """(threshold in standard deviations, angle in degrees) of the best ternary quantizer for large d."""
    def cos(t):
        tail = 0.5 * math.erfc(t / math.sqrt(2))
        return math.sqrt(2) * _phi(t) / math.sqrt(tail)
    lo, hi = 0.0, 3.0
    for _ in range(200):  # golden-section search: cos(t) is unimodal on [0, 3]
        a, b = hi - (hi - lo) / 1.618033988749895, lo + (hi - lo) / 1.618033988749895
        if cos(a) < cos(b):
            lo = a
        else:
            hi = b
    t = (lo + hi) / 2
    return t, math.degrees(math.acos(cos(t)))


def dot_product_correlation(w_rows, a_rows):
    """Pearson correlation between w . a and sign(w) . sign(a) over all pairs (the paper's measurement)."""
    cont = np.asarray(w_rows, np.float64) @ np.asarray(a_rows, np.float64).T
    binary = np.sign(w_rows).astype(np.float64) @ np.sign(a_rows).astype(np.float64).T
    cont, binary = cont.ravel(), binary.ravel()
    if cont.std() == 0 or binary.std() == 0:
        return float("nan")
    return float(np.corrcoef(cont, binary)[0, 1])
