"""Importance groups, severity and importance ground matrices (Liu et al. 2020, Fig. 2)."""

import ot
import pytest
import torch

import wlearn.ground as g
from wlearn.data.cityscapes import CATEGORIES, CLASS_NAMES
from wlearn.losses import ImportanceAwareLoss, one_hot_wasserstein


def idx(name, dataset="cityscapes"):
    return list(g.importance_groups(dataset)).index(name)


def test_groups_cityscapes_match_the_paper():
    groups = g.importance_groups("cityscapes")
    assert tuple(groups) == CLASS_NAMES
    assert {n for n, v in groups.items() if v == 4} == {
        "person",
        "rider",
        "car",
        "truck",
        "bus",
        "motorcycle",
        "bicycle",
    }
    assert {n for n, v in groups.items() if v == 3} >= {"road", "sidewalk", "train"}
    assert {n for n, v in groups.items() if v == 2} == {
        "building",
        "wall",
        "fence",
        "vegetation",
        "terrain",
    }
    assert {n for n, v in groups.items() if v == 1} == {"sky"}
    assert all(groups[n] == 3 for n in ("pole", "traffic light", "traffic sign"))


def test_groups_camvid():
    groups = g.importance_groups("camvid")
    assert len(groups) == 11
    assert {n for n, v in groups.items() if v == 4} == {"car", "pedestrian", "bicyclist"}
    assert {"road", "sidewalk", "sign"} <= {n for n, v in groups.items() if v == 3}
    assert g.severity_matrix("camvid").shape == (11, 11)
    assert g.vulnerable_road_users("camvid") == ("pedestrian", "bicyclist")


@pytest.mark.parametrize("dataset", ["cityscapes", "camvid"])
def test_severity_matrix_properties(dataset):
    D = g.severity_matrix(dataset)
    C = len(g.importance_groups(dataset))
    assert D.shape == (C, C) and D.dtype == torch.float64
    assert torch.all(D.diagonal() == 0)
    assert D.min() >= 0 and D.max() == 1
    off = D[~torch.eye(C, dtype=torch.bool)]
    assert torch.all(off > 0)
    assert not torch.equal(D, D.T)  # asymmetric


def test_severity_matrix_orders_mistakes_as_fig2():
    D = g.severity_matrix()
    car, bus, road, sky = idx("car"), idx("bus"), idx("road"), idx("sky")
    # D[predicted, true]
    assert D[bus, car] < D[road, car]
    assert D[bus, car] < D[sky, car]
    assert D[road, car] > D[car, road]  # missing an obstacle is worse than a phantom one
    vru = [idx(n) for n in g.vulnerable_road_users()]
    vehicles = [idx(n) for n in ("car", "truck", "bus", "train")]
    stuff = [i for i in range(19) if i not in vru + vehicles]
    not_vru = [i for i in range(19) if i not in vru]
    for t in vru:
        assert torch.all(D[stuff, t] == 1.0)  # a VRU taken for background: the maximum
        assert torch.all(D[vehicles, t] == 0.5)  # still a moving obstacle
        assert torch.all(D[vru, t][D[vru, t] > 0] == 0.25)  # another VRU
        assert D[stuff, t].min() > D[:, not_vru].max()  # worse than any non-VRU mistake


def test_severity_matrix_uses_official_categories():
    D = g.severity_matrix()
    for i in range(19):
        for j in range(19):
            if i != j and CATEGORIES[i] == CATEGORIES[j] == "construction":
                assert D[i, j] == pytest.approx(0.4 * 0.25)


def test_importance_matrix_is_fig2_right():
    D = g.importance_matrix()
    groups = list(g.importance_groups().values())
    omega = {1: 0.25, 2: 0.5, 3: 0.75, 4: 1.0}
    for j in range(19):
        col = torch.cat([D[:j, j], D[j + 1 :, j]])
        assert torch.all(col == omega[groups[j]])  # every off-diagonal entry of column j
        assert D[j, j] == 0


def test_importance_matrix_loss_is_weighted_one_minus_prob():
    torch.manual_seed(0)
    z = torch.randn(50, 19, dtype=torch.float64)
    t = torch.randint(0, 19, (50,))
    D = g.importance_matrix()
    per = one_hot_wasserstein(z, t, D, reduction="none")
    w = D.max(0).values  # importance of each true class
    assert torch.allclose(per, w[t] * (1 - z.softmax(1)[torch.arange(50), t]))


@pytest.mark.parametrize("f", [lambda D: D, lambda D: g.power(D, 2), lambda D: g.huber(D, 0.5)])
def test_closed_form_equals_emd_with_severity(f):
    M = f(g.severity_matrix())
    torch.manual_seed(1)
    for _ in range(5):
        s = torch.randn(19, dtype=torch.float64).softmax(0)
        t = int(torch.randint(0, 19, ()))
        b = torch.zeros(19, dtype=torch.float64)
        b[t] = 1
        ref = ot.emd2(s.numpy(), b.numpy(), M.numpy())
        got = one_hot_wasserstein(s.log()[None], torch.tensor([t]), M)
        assert abs(got.item() - ref) < 1e-10


def test_bad_inputs():
    with pytest.raises(ValueError, match="dataset"):
        g.importance_groups("kitti")
    with pytest.raises(ValueError, match="same_family"):
        g.severity_matrix(same_family=0)
    with pytest.raises(ValueError, match="other_road_user"):
        g.severity_matrix(other_road_user=1.5)
    with pytest.raises(ValueError, match="group_weights"):
        g.importance_matrix(group_weights=(1, 2, 3))
    with pytest.raises(ValueError, match="group_weights"):
        g.importance_matrix(group_weights=(1, 2, -3, 4))


# --- ImportanceAwareLoss ----------------------------------------------------------------


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_ial_matches_weighted_cross_entropy(reduction):
    torch.manual_seed(0)
    z = torch.randn(2, 19, 5, 7, dtype=torch.float64)
    t = torch.randint(0, 19, (2, 5, 7))
    t[0, 0, :3] = 255
    groups = list(g.importance_groups().values())
    w = torch.tensor([float(v) for v in groups], dtype=torch.float64)  # default weights 1..4
    ref = torch.nn.functional.cross_entropy(z, t, weight=w, ignore_index=255, reduction=reduction)
    got = ImportanceAwareLoss(reduction=reduction)(z, t)
    assert torch.allclose(got, ref)
    # by hand: -w[t] log softmax at the true class, weighted mean over kept pixels
    keep = t != 255
    logp = z.log_softmax(1).gather(1, t.clamp(max=18)[:, None])[:, 0]
    per = -w[t.clamp(max=18)] * logp * keep
    hand = {"sum": per.sum(), "mean": per.sum() / w[t.clamp(max=18)][keep].sum(), "none": per}[
        reduction
    ]
    assert torch.allclose(got, hand)


def test_ial_weights_follow_groups_and_gradient_flows():
    loss = ImportanceAwareLoss(group_weights=(1, 1, 1, 10))
    assert loss.weight[idx("person")] == 10 and loss.weight[idx("sky")] == 1
    z = torch.randn(3, 19, requires_grad=True)
    loss(z, torch.tensor([0, 11, 255])).backward()
    assert torch.isfinite(z.grad).all() and z.grad[2].abs().sum() == 0


def test_ial_bad_inputs():
    with pytest.raises(ValueError, match="reduction"):
        ImportanceAwareLoss(reduction="avg")
    with pytest.raises(ValueError, match="group_weights"):
        ImportanceAwareLoss(group_weights=(0, 1, 2, 3))
    with pytest.raises(TypeError, match="ignore_index"):
        ImportanceAwareLoss(ignore_index=2.5)
    with pytest.raises(ValueError, match="logits"):
        ImportanceAwareLoss()(torch.randn(4, 11), torch.zeros(4, dtype=torch.long))
    with pytest.raises(TypeError, match="logits"):
        ImportanceAwareLoss()(
            torch.zeros(4, 19, dtype=torch.long), torch.zeros(4, dtype=torch.long)
        )
