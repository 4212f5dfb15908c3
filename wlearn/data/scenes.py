"""Street scenes with the 19 Cityscapes train classes, generated in NumPy.

A seeded, deterministic stand-in for Cityscapes that is small enough for a CPU lesson and
confusable in the same places: sky on top, buildings, walls, fences and trees along the
horizon, a road in perspective with sidewalks and terrain, poles carrying traffic signs and
lights; cars, trucks, buses and (rarely) trains on the road drawn with the same box shapes and
the same paint colours, so that they are confused with one another; persons on the sidewalks
and riders on bicycles and motorcycles (the same clothes; two-wheelers that differ by their
wheels and frame), so that person/rider and motorcycle/bicycle are confused too. Objects are
drawn far to near (near ones occlude), then the whole scene gets texture, a colour cast,
uneven lighting, shadows and sensor noise. An ego-vehicle hood (``labelId`` 1, ignored in
training and evaluation) sometimes covers the bottom.

How the scenes differ from Cityscapes (Cordts et al. 2016), on purpose: 64 x 128 pixels
instead of 1024 x 2048; flat-shaded boxes and ellipses instead of photographs; road users stand
in the nearer part of the road (depth ``t >= NEAR``), are larger relative to the image and more
frequent (1-4 persons, 1-3 cars, up to two trucks, buses, motorcycles and bicycles per scene)
than in Cityscapes, where most pedestrians and cyclists are a few pixels tall; every scene has
the same layout (one straight road to a vanishing point). Version 1 drew road users down to the
horizon: at 64 x 128 most were a few pixels wide, and a cross-entropy ENet trained on the CPU
found none of person, rider, truck, motorcycle, bicycle (issue 14); version 2
(:data:`SCENES_VERSION`) is learnable at that size.

Labels are Cityscapes ``labelIds`` (like ``*_gtFine_labelIds.png``), not ``trainIds``.

Introduced in notebooks/08_importance_aware_segmentation.ipynb.
"""

from __future__ import annotations

import numpy as np

# Cityscapes labelIds (see cityscapesscripts.helpers.labels)
EGO, ROAD, SIDEWALK, BUILDING, WALL, FENCE, POLE = 1, 7, 8, 11, 12, 13, 17
LIGHT, SIGN, VEGETATION, TERRAIN, SKY = 19, 20, 21, 22, 23
PERSON, RIDER, CAR, TRUCK, BUS, TRAIN, MOTORCYCLE, BICYCLE = 24, 25, 26, 27, 28, 31, 32, 33

_PAINT = np.array(
    [
        [0.85, 0.85, 0.85],
        [0.55, 0.56, 0.58],
        [0.12, 0.12, 0.14],
        [0.62, 0.12, 0.1],
        [0.15, 0.25, 0.55],
        [0.3, 0.33, 0.3],
        [0.75, 0.7, 0.55],
    ]
)  # vehicle paints
_CLOTHES = np.array(
    [
        [0.15, 0.15, 0.2],
        [0.5, 0.1, 0.1],
        [0.2, 0.3, 0.5],
        [0.45, 0.4, 0.3],
        [0.3, 0.45, 0.3],
        [0.6, 0.6, 0.6],
        [0.35, 0.3, 0.35],
    ]
)
SCENES_VERSION = 2
"""Version of the generator: changes whenever the same seed would draw different scenes
(2: road users nearer and larger, up to two of each kind; see the module docstring)."""
NEAR = 0.3
"""Road users are drawn at depth ``t >= NEAR`` (0 at the horizon, 1 at the bottom row)."""
_OPTIONAL = {TRUCK: 0.4, BUS: 0.35, TRAIN: 0.08, MOTORCYCLE: 0.6, BICYCLE: 0.6}
# probability of each of (up to) two trucks, buses, ... in a scene

_SKIN = np.array([[0.85, 0.68, 0.55], [0.6, 0.42, 0.3], [0.4, 0.27, 0.18]])


class _Canvas:
    """An image (H, W, 3) in [0, 1] and its labelIds (H, W), with clipped drawing primitives."""

    def __init__(self, rng: np.random.Generator, height: int, width: int):
        self.rng, self.H, self.W = rng, height, width
        self.img = np.zeros((height, width, 3))
        self.lab = np.zeros((height, width), dtype=np.uint8)

    def _box(self, y0, y1, x0, x1):
        y0, y1 = max(0, int(round(y0))), min(self.H, int(round(y1)))
        x0, x1 = max(0, int(round(x0))), min(self.W, int(round(x1)))
        return y0, max(y0, y1), x0, max(x0, x1)

    def paint(self, mask_fn, y0, y1, x0, x1, label, color, tex=0.06):
        """Fill the pixels of the box where ``mask_fn(yy, xx)`` holds (``None``: all of them)."""
        y0, y1, x0, x1 = self._box(y0, y1, x0, x1)
        if y1 <= y0 or x1 <= x0:
            return
        yy, xx = np.mgrid[y0:y1, x0:x1]
        m = np.ones(yy.shape, bool) if mask_fn is None else mask_fn(yy, xx)
        shade = 1 + tex * self.rng.standard_normal(yy.shape)
        self.img[y0:y1, x0:x1][m] = (np.asarray(color) * shade[..., None])[m]
        self.lab[y0:y1, x0:x1][m] = label

    def rect(self, y0, y1, x0, x1, label, color, tex=0.06):
        self.paint(None, y0, y1, x0, x1, label, color, tex)

    def ellipse(self, cy, cx, ry, rx, label, color, tex=0.06, ring=0.0):
        ry, rx = max(ry, 0.5), max(rx, 0.5)

        def m(yy, xx):
            r = ((yy + 0.5 - cy) / ry) ** 2 + ((xx + 0.5 - cx) / rx) ** 2
            return (r <= 1) & (r >= ring)

        self.paint(m, cy - ry, cy + ry + 1, cx - rx, cx + rx + 1, label, color, tex)


def _person(c: _Canvas, yb, x, h, label):
    """A standing (or seated, for riders) human of height ``h`` with feet at row ``yb``."""
    rng, w = c.rng, max(1.0, 0.32 * h)
    clothes, skin = _CLOTHES[rng.integers(len(_CLOTHES))], _SKIN[rng.integers(len(_SKIN))]
    c.rect(
        yb - 0.5 * h, yb, x - 0.35 * w, x + 0.35 * w, label, _CLOTHES[rng.integers(len(_CLOTHES))]
    )
    c.rect(yb - 0.85 * h, yb - 0.45 * h, x - 0.5 * w, x + 0.5 * w, label, clothes)
    c.ellipse(yb - 0.92 * h, x, 0.09 * h, 0.3 * w, label, skin)


def _two_wheeler(c: _Canvas, yb, x, h, label, rider_h):
    """A bicycle or motorcycle of height ``h`` (wheels on row ``yb``) with a rider on top.

    Both have two wheels and a frame between them and carry a rider (so they are confused with
    each other); the motorcycle has solid wheels and a tall body, the bicycle spoked (ring)
    wheels and a thin frame with a seat post.
    """
    r = 0.32 * h
    col = _PAINT[c.rng.integers(len(_PAINT))]
    if label == MOTORCYCLE:
        c.rect(yb - 1.3 * r, yb - 0.45 * r, x - 1.25 * r, x + 1.25 * r, label, col)
    else:
        c.rect(yb - 1.25 * r, yb - 0.8 * r, x - 1.3 * r, x + 1.3 * r, label, col)
        c.rect(yb - 1.6 * r, yb - 0.8 * r, x - 0.25 * r, x + 0.25 * r, label, col)  # seat post
    for dx in (-1.3 * r, 1.3 * r):
        c.ellipse(
            yb - r, x + dx, r, r, label, (0.1, 0.1, 0.1), ring=0.0 if label == MOTORCYCLE else 0.3
        )
    _person(c, yb - 0.9 * r, x, rider_h, RIDER)


def _vehicle(c: _Canvas, yb, x, s, label):
    """A car, truck, bus or train: the same boxes, wheels and paints at different proportions."""
    rng = c.rng
    hh, ww = {CAR: (0.55, 1.0), TRUCK: (0.8, 1.25), BUS: (0.9, 1.6), TRAIN: (0.95, 2.6)}[label]
    h, w = hh * s * rng.uniform(0.9, 1.1), ww * s * rng.uniform(0.9, 1.15)
    col = _PAINT[rng.integers(len(_PAINT))]
    glass = np.array([0.2, 0.25, 0.3]) * rng.uniform(0.7, 1.3)
    c.ellipse(yb, x, 0.06 * h + 0.5, 0.6 * w, ROAD, (0.12, 0.12, 0.13), tex=0.02)  # shadow
    if label == CAR:
        c.rect(yb - 0.6 * h, yb - 0.1 * h, x - w / 2, x + w / 2, label, col)
        c.rect(yb - h, yb - 0.55 * h, x - 0.35 * w, x + 0.35 * w, label, col)
        c.rect(yb - 0.92 * h, yb - 0.62 * h, x - 0.3 * w, x + 0.3 * w, label, glass)
    elif label == TRUCK:
        cab = rng.choice([-1, 1])
        c.rect(yb - 0.65 * h, yb - 0.1 * h, x - w / 2, x + w / 2, label, col)
        c.rect(
            yb - h,
            yb - 0.3 * h,
            x - cab * w / 2,
            x - cab * w / 2 + cab * 0.7 * w,
            label,
            _PAINT[rng.integers(len(_PAINT))],
        )
        c.rect(yb - 0.62 * h, yb - 0.4 * h, x + cab * 0.25 * w, x + cab * 0.45 * w, label, glass)
    else:  # bus and train: long boxes with a row of windows
        c.rect(yb - h, yb - 0.1 * h, x - w / 2, x + w / 2, label, col)
        n = 4 if label == BUS else 7
        for k in range(n):
            x0 = x - w / 2 + (k + 0.15) * w / n
            c.rect(yb - 0.85 * h, yb - 0.55 * h, x0, x0 + 0.7 * w / n, label, glass)
    for dx in (-0.33 * w, 0.33 * w):
        c.ellipse(yb - 0.12 * h, x + dx, 0.13 * h, 0.1 * w, label, (0.06, 0.06, 0.06))


def make_scene(rng: np.random.Generator, height: int = 64, width: int = 128):
    """One street scene.

    Parameters
    ----------
    rng : numpy.random.Generator
    height, width : int
        Image size (at least 32 x 32).

    Returns
    -------
    image : uint8 array, shape (height, width, 3)
    label_ids : uint8 array, shape (height, width), Cityscapes labelIds

    Introduced in notebooks/08_importance_aware_segmentation.ipynb.
    """
    H, W = height, width
    c = _Canvas(rng, H, W)
    yy, xx = np.mgrid[0:H, 0:W]
    h0 = H * rng.uniform(0.36, 0.48)  # horizon
    vx = W * rng.uniform(0.35, 0.65)  # vanishing point
    # sky, lighter towards the horizon
    sky = np.array([0.42, 0.58, 0.85]) * rng.uniform(0.8, 1.15) + rng.uniform(-0.05, 0.05, 3)
    c.img[:] = sky + 0.25 * (yy / H)[..., None]
    c.lab[:] = SKY
    # buildings and trees along the horizon
    x = -rng.uniform(0, 0.1 * W)
    while x < W:
        bw = W * rng.uniform(0.1, 0.3)
        top = h0 - H * rng.uniform(0.12, 0.45)
        if rng.random() < 0.25:  # a tree: trunk and crown
            c.rect(
                top + 0.5 * (h0 - top),
                h0 + 1,
                x + 0.45 * bw,
                x + 0.55 * bw,
                VEGETATION,
                (0.3, 0.22, 0.12),
            )
            c.ellipse(
                top + 0.35 * (h0 - top),
                x + bw / 2,
                0.4 * (h0 - top),
                0.55 * bw,
                VEGETATION,
                np.array([0.22, 0.42, 0.15]) * rng.uniform(0.7, 1.3),
                tex=0.2,
            )
        else:
            col = np.array([0.45, 0.42, 0.4]) * rng.uniform(0.6, 1.4) + rng.uniform(-0.06, 0.06, 3)
            c.rect(top, h0 + 1, x, x + bw, BUILDING, col, tex=0.04)
            win = ((yy // 3) % 2 == 0) & ((xx // 3) % 2 == 0) & (yy > top + 2) & (yy < h0 - 2)
            win &= (xx >= x + 1) & (xx < x + bw - 1)
            c.img[win] *= 0.55
        x += bw
    # a wall or a fence in front of the buildings
    for _ in range(rng.integers(0, 3)):
        x0, fw, fh = (
            W * rng.uniform(-0.1, 0.9),
            W * rng.uniform(0.15, 0.4),
            H * rng.uniform(0.04, 0.09),
        )
        if rng.random() < 0.5:
            c.rect(
                h0 - fh,
                h0 + 1,
                x0,
                x0 + fw,
                WALL,
                np.array([0.55, 0.52, 0.5]) * rng.uniform(0.8, 1.2),
            )
        else:
            c.paint(
                lambda yy, xx: (xx % 3 == 0) | (yy % 3 == 0),
                h0 - fh,
                h0 + 1,
                x0,
                x0 + fw,
                FENCE,
                np.array([0.5, 0.45, 0.4]) * rng.uniform(0.8, 1.2),
            )
    # ground in perspective: road between two lines through the vanishing point, then sidewalks
    t = np.clip((yy - h0) / (H - h0), 0, None)  # 0 at the horizon, 1 at the bottom
    ground = yy >= h0
    rw, sw = W * rng.uniform(0.3, 0.5), W * rng.uniform(0.2, 0.4)
    d = np.abs(xx - vx)
    road, side = ground & (d <= rw * t), ground & (d > rw * t) & (d <= (rw + sw) * t)
    beyond = ground & (d > (rw + sw) * t)
    c.img[road] = np.array([0.36, 0.33, 0.38]) * rng.uniform(0.7, 1.2)
    c.lab[road] = ROAD
    walk = np.array([0.62, 0.56, 0.58]) * rng.uniform(0.8, 1.15)
    c.img[side] = walk
    c.lab[side] = SIDEWALK
    grass = rng.random() < 0.6
    c.img[beyond] = np.array([0.45, 0.6, 0.3]) * rng.uniform(0.8, 1.2) if grass else walk
    c.lab[beyond] = TERRAIN if grass else SIDEWALK
    lane = (
        road & (np.abs(xx - vx) < 0.6 + 0.02 * W * t) & (((yy - h0) / (H - h0 + 1) * 8) % 1 < 0.5)
    )
    c.img[lane] = 0.85

    # objects, far to near: (row of the base, kind). Road users stand in the nearer part of the
    # ground (depth t >= NEAR), where they are large enough to be segmented at this resolution.
    def depth():
        return h0 + (H - h0) * rng.uniform(NEAR, 0.95)

    objs = [(h0 + (H - h0) * rng.uniform(0.02, 0.95), "pole") for _ in range(rng.integers(1, 4))]
    objs += [(depth(), CAR) for _ in range(rng.integers(1, 4))]
    objs += [(depth(), PERSON) for _ in range(rng.integers(1, 5))]
    for kind, p in _OPTIONAL.items():
        for _ in range(2):  # at most two of each
            if rng.random() < p:
                objs.append((depth(), kind))
    for yb, kind in sorted(objs, key=lambda o: o[0]):
        tt = (yb - h0) / (H - h0)
        side_x = vx + rng.choice([-1, 1]) * (rw + rng.uniform(0.1, 0.9) * sw) * tt
        road_x = vx + rng.uniform(-0.9, 0.9) * rw * tt
        s = 0.3 * W * (0.15 + tt)  # apparent size grows towards the camera
        if kind == "pole":
            ph = 1.6 * s
            c.rect(
                yb - ph,
                yb,
                side_x - max(0.6, 0.025 * s),
                side_x + max(0.6, 0.025 * s),
                POLE,
                (0.5, 0.5, 0.5),
            )
            if rng.random() < 0.5:
                c.rect(
                    yb - ph - 0.13 * s,
                    yb - ph + 0.13 * s,
                    side_x - 0.1 * s,
                    side_x + 0.1 * s,
                    SIGN,
                    [(0.85, 0.8, 0.1), (0.8, 0.1, 0.1), (0.1, 0.3, 0.8)][rng.integers(3)],
                )
            else:
                c.rect(
                    yb - ph - 0.26 * s,
                    yb - ph + 0.1 * s,
                    side_x - 0.08 * s,
                    side_x + 0.08 * s,
                    LIGHT,
                    (0.12, 0.12, 0.1),
                )
                c.ellipse(
                    yb - ph - 0.1 * s,
                    side_x,
                    0.035 * s,
                    0.035 * s,
                    LIGHT,
                    [(0.9, 0.1, 0.1), (0.1, 0.9, 0.2), (0.95, 0.6, 0.1)][rng.integers(3)],
                )
        elif kind == PERSON:
            _person(c, yb, side_x, 0.75 * s * rng.uniform(0.85, 1.1), PERSON)
        elif kind == BICYCLE:
            x = side_x if rng.random() < 0.5 else vx + rng.choice([-1, 1]) * 0.9 * rw * tt
            _two_wheeler(c, yb, x, 0.5 * s, BICYCLE, 0.6 * s)
        elif kind == MOTORCYCLE:
            _two_wheeler(c, yb, road_x, 0.5 * s, MOTORCYCLE, 0.6 * s)
        else:
            _vehicle(c, yb, road_x, s, kind)
    if rng.random() < 0.3:  # ego-vehicle hood: ignored
        c.ellipse(H + 0.02 * H, W / 2, 0.12 * H, 0.7 * W, EGO, (0.08, 0.08, 0.1), tex=0.02)
    # lighting: colour cast, low-frequency shading, sensor noise
    gy, gx = max(2, H // 16), max(2, W // 16)
    low = rng.standard_normal((gy, gx))
    low = np.kron(low, np.ones((H // gy + 1, W // gx + 1)))[:H, :W]  # (H, W)
    img = c.img * rng.uniform(0.6, 1.25) * rng.uniform(0.9, 1.1, 3) * (1 + 0.08 * low[..., None])
    img = img + rng.uniform(0.02, 0.06) * rng.standard_normal(img.shape)
    return (np.clip(img, 0, 1) * 255).astype(np.uint8), c.lab


def generate_scenes(n: int, *, height: int = 64, width: int = 128, seed=0):
    """``n`` scenes, deterministic in ``seed`` (an int or a list of ints, as for
    :func:`numpy.random.default_rng`).

    Parameters
    ----------
    n : int
        Number of scenes.
    height, width : int
        Image size (at least 32 x 32).
    seed : int or list of int
        Seeds the scenes.

    Returns
    -------
    images : uint8 array, shape (n, height, width, 3)
    label_ids : uint8 array, shape (n, height, width), Cityscapes labelIds

    Introduced in notebooks/08_importance_aware_segmentation.ipynb.
    """
    for name, v, lo in (("n", n, 1), ("height", height, 32), ("width", width, 32)):
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < lo:
            raise ValueError(f"{name}: expected an integer >= {lo}, got {v!r}")
    rng = np.random.default_rng(seed)
    images = np.empty((n, height, width, 3), np.uint8)
    label_ids = np.empty((n, height, width), np.uint8)
    for i in range(n):
        images[i], label_ids[i] = make_scene(rng, height, width)
    return images, label_ids
