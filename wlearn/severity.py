"""Importance groups and severity-aware ground matrices for driving scenes.

Re-exported by :mod:`wlearn.ground`. Every matrix here is in the course's transport
orientation (Frogner et al. 2015; docs/notation.md): **rows = predicted class, columns = true
class**, so ``D[i, j]`` is the severity of predicting class ``i`` where the truth is class
``j``, and ``wlearn.losses.OneHotWassersteinLoss(D)`` charges ``sum_i softmax_i * D[i, target]``.
Liu et al. (2020) use the same orientation in their equations: in eq. 1, ``W[i, j]`` is "the
mass moved from the ith point in source distribution to the jth target position", the source
being the prediction ``s`` and the target ``t``, and eq. 2 is ``sum_i s_i f(d[i, j*])`` with
``j*`` the true class. Their prose reads the other way: the ground metric "measures the
different severity of misclassifying i-th class pixel into j-th class pixel" (Methodology),
i.e. true class first. We follow the equations. Their Fig. 2 is drawn without axis labels, so
its orientation cannot be read off the figure.

The matrices are the course's constructions in the spirit of Liu et al.'s Fig. 2: the paper
draws a severity matrix (left) and an importance matrix (right) but prints neither.

Introduced in notebooks/08_importance_aware_segmentation.ipynb.
"""

from __future__ import annotations

import torch

_CITYSCAPES_GROUPS = {
    # Group 4 (most important): road users, vulnerable or not (Chen, Gong & Yang 2017)
    "person": 4,
    "rider": 4,
    "car": 4,
    "truck": 4,
    "bus": 4,
    "motorcycle": 4,
    "bicycle": 4,
    # Group 3: where the car drives, plus the traffic furniture that governs driving
    "road": 3,
    "sidewalk": 3,
    "train": 3,
    "pole": 3,
    "traffic light": 3,
    "traffic sign": 3,
    # Group 2: static background
    "building": 2,
    "wall": 2,
    "fence": 2,
    "vegetation": 2,
    "terrain": 2,
    # Group 1 (least important)
    "sky": 1,
}
# CamVid's 11 classes in the order of SegNet's CamVid release
_CAMVID_GROUPS = {
    "sky": 1,
    "building": 2,
    "pole": 3,
    "road": 3,
    "sidewalk": 3,
    "tree": 2,
    "sign": 3,
    "fence": 2,
    "car": 4,
    "pedestrian": 4,
    "bicyclist": 4,
}
# Families of classes that look and behave alike (Cityscapes categories; the human category
# and the two-wheelers are merged into the vulnerable road users)
_FAMILIES = {
    "cityscapes": {
        "road": "flat",
        "sidewalk": "flat",
        "building": "construction",
        "wall": "construction",
        "fence": "construction",
        "pole": "object",
        "traffic light": "object",
        "traffic sign": "object",
        "vegetation": "nature",
        "terrain": "nature",
        "sky": "sky",
        "person": "vru",
        "rider": "vru",
        "motorcycle": "vru",
        "bicycle": "vru",
        "car": "vehicle",
        "truck": "vehicle",
        "bus": "vehicle",
        "train": "vehicle",
    },
    "camvid": {
        "sky": "sky",
        "building": "construction",
        "pole": "object",
        "road": "flat",
        "sidewalk": "flat",
        "tree": "nature",
        "sign": "object",
        "fence": "construction",
        "car": "vehicle",
        "pedestrian": "vru",
        "bicyclist": "vru",
    },
}
_MOVING = ("vru", "vehicle")


def _check_dataset(dataset: str) -> str:
    if dataset not in ("cityscapes", "camvid"):
        raise ValueError(
            f"dataset: expected 'cityscapes' or 'camvid', got {dataset!r}; pass "
            "the name in lower case"
        )
    return dataset


def importance_groups(dataset: str = "cityscapes") -> dict[str, int]:
    """Importance group (1 = least, 4 = most important) of each class, in class-index order.

    The groups of the Importance-Aware Loss (Chen, Gong & Yang 2017), as Liu et al. 2020
    (Related Work) list them for Cityscapes: Group 4 = {Person, Car, Truck, Bus, ...}, Group 3 =
    {Road, Sidewalks, Train}, Group 2 = {Building, Wall, Fence, Vegetation, Terrain}, Group 1 =
    {Sky}. Group 4 ends with "..."; Liu's Table 1 reports Person, Rider, Car, Truck, Bus,
    Motor, Bike under "Group4", so Group 4 here is those seven classes.

    - Cityscapes (19 train classes, in ``trainId`` order): the list leaves out pole, traffic
      light and traffic sign; **we** put them in Group 3 (the paper says nothing about them):
      lights and signs regulate what the car may do next, poles are rigid obstacles at the
      kerb; they matter more than the static background of Group 2 but, unlike road users,
      they do not move into the car's path. Liu's CamVid table (Table 2) also has the sign in
      Group 3.
    - CamVid (11 classes, SegNet order sky, building, pole, road, sidewalk, tree, sign,
      fence, car, pedestrian, bicyclist): Group 4 car, pedestrian, bicyclist and Group 3 road,
      sidewalk, sign (the headers of Liu's Table 2); pole in Group 3 (as for Cityscapes, our
      choice); Group 2 building, tree, fence (Cityscapes' building, vegetation, fence); Group 1
      sky.

    Parameters
    ----------
    dataset : {"cityscapes", "camvid"}

    Returns
    -------
    dict
        ``{class name: group}``, ordered by class index (``trainId`` for Cityscapes).

    Introduced in notebooks/08_importance_aware_segmentation.ipynb.
    """
    if _check_dataset(dataset) == "camvid":
        return dict(_CAMVID_GROUPS)
    from wlearn.data.cityscapes import CLASS_NAMES

    return {name: _CITYSCAPES_GROUPS[name] for name in CLASS_NAMES}


def vulnerable_road_users(dataset: str = "cityscapes") -> tuple[str, ...]:
    """Classes of people and two-wheelers: person, rider, motorcycle, bicycle (CamVid:
    pedestrian, bicyclist), the road users hurt by any mistake in :func:`severity_matrix`.

    Group 4 of the Importance-Aware Loss (Chen, Gong & Yang 2017, as quoted by Liu et al. 2020,
    Related Work) also holds the vehicles; these are its unprotected members.

    Parameters
    ----------
    dataset : {"cityscapes", "camvid"}

    Returns
    -------
    tuple of str
        Class names, in class-index order.
    """
    fam = _FAMILIES[_check_dataset(dataset)]
    return tuple(n for n in importance_groups(dataset) if fam[n] == "vru")


def severity_matrix(
    dataset: str = "cityscapes", *, same_family: float = 0.25, other_road_user: float = 0.5
) -> torch.Tensor:
    r"""A severity-aware ground matrix in the spirit of Liu et al. 2020, Fig. 2 (left), in [0, 1].

    The course's construction: the paper draws such a matrix but prints no entries.
    Transport orientation: ``D[i, j]`` = severity of **predicting** class ``i`` where the
    **true** class is ``j`` (as in Liu's eq. 1-2). Built from two documented rules,

    .. math::

        D[i, j] = w(j)\, c(j, i), \qquad D[j, j] = 0,

    - ``w(j)``, how much the true class matters: ``group(j) / 5`` from
      :func:`importance_groups` (sky 0.2, background 0.4, road and traffic furniture 0.6,
      vehicles 0.8), and 1 for the vulnerable road users (person, rider, motorcycle,
      bicycle), who are hurt by any mistake: missing them is the worst error of all;
    - ``c(j, i)``, how different the mistake is: ``same_family`` (default 1/4) when both
      classes are in the same family (flat, construction, object, nature, vehicle,
      vulnerable road user: the Cityscapes categories with humans and two-wheelers
      merged), ``other_road_user`` (default 1/2) when both are road users of different
      families (a cyclist taken for a car is still an obstacle that moves), 1 otherwise.

    So labelling a car as a bus costs 0.8 / 4 = 0.2, a car as road or sky 0.8, a person as
    anything but another vulnerable road user 1 (the maximum), a person as a rider 0.25,
    while the sky taken for a building costs 0.2. The matrix is asymmetric: a car taken for
    road (a missed obstacle, 0.8) is worse than road taken for a car (0.6).

    Parameters
    ----------
    dataset : {"cityscapes", "camvid"}
    same_family, other_road_user : float in (0, 1]
        The two discounts of ``c``.

    Returns
    -------
    D : torch.Tensor, shape (C, C), float64
        ``C`` = 19 (Cityscapes ``trainId`` order) or 11 (CamVid). Transform it with
        :func:`wlearn.ground.power` or :func:`~wlearn.ground.huber` (Liu et al. eq. 3-4).

    Introduced in notebooks/08_importance_aware_segmentation.ipynb.
    """
    for name, v in (("same_family", same_family), ("other_road_user", other_road_user)):
        if not isinstance(v, (int, float)) or isinstance(v, bool) or not 0 < v <= 1:
            raise ValueError(f"{name}: expected a number in (0, 1], got {v!r}")
    groups = importance_groups(dataset)
    fam = _FAMILIES[dataset]
    names = list(groups)
    w = torch.tensor(
        [1.0 if fam[n] == "vru" else groups[n] / 5 for n in names], dtype=torch.float64
    )
    C = len(names)
    c = torch.ones(C, C, dtype=torch.float64)  # c[j, i]: true j, predicted i
    for j, nj in enumerate(names):
        for i, ni in enumerate(names):
            if fam[ni] == fam[nj]:
                c[j, i] = same_family
            elif fam[ni] in _MOVING and fam[nj] in _MOVING:
                c[j, i] = other_road_user
    S = w[:, None] * c  # (C, C), S[true, predicted] (the order of Liu's prose)
    S.fill_diagonal_(0)
    return S.T.contiguous()  # (C, C), D[predicted, true]


def importance_matrix(
    dataset: str = "cityscapes", *, group_weights=(0.25, 0.5, 0.75, 1.0)
) -> torch.Tensor:
    r"""An importance-aware ground matrix in the spirit of Liu et al. 2020, Fig. 2 (right).

    Liu et al. write that "the importance-aware matrix can be achieved by configuring the
    ground matrix as Fig. 2 right" and draw it; they print neither its entries nor the group
    weights. Our construction: every mistake on a true class ``j`` costs the importance of
    ``j``, whatever was predicted,

    .. math::

        D[i, j] = \omega_{g(j)} \;(i \ne j), \qquad D[j, j] = 0,

    so the one-hot Wasserstein loss becomes :math:`\omega_{g(k^\star)} (1 - h_{k^\star})`, an
    importance-weighted loss like IAL. In our orientation (rows = predicted, columns = true)
    the importance of class ``j`` fills the off-diagonal entries of **column** ``j``.

    Parameters
    ----------
    dataset : {"cityscapes", "camvid"}
    group_weights : 4 non-negative floats
        ``omega_1 .. omega_4``, the importance of Groups 1-4.

    Returns
    -------
    D : torch.Tensor, shape (C, C), float64

    Introduced in notebooks/08_importance_aware_segmentation.ipynb.
    """
    omega = torch.as_tensor(group_weights, dtype=torch.float64)
    if omega.shape != (4,) or not torch.isfinite(omega).all() or (omega < 0).any():
        raise ValueError(
            f"group_weights: expected 4 finite non-negative numbers, got {group_weights!r}"
        )
    g = torch.tensor(list(importance_groups(dataset).values())) - 1  # (C,)
    C = len(g)
    D = omega[g][None, :].expand(C, C).clone()  # (C, C): column j = omega of class j
    D.fill_diagonal_(0)
    return D
