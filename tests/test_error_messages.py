"""Errors a learner is likely to hit name the argument and say how to fix it (issue 9).

Each case feeds one typical mistake (logits where probabilities are expected, float or
out-of-range targets, a ground matrix of the wrong size, a bad ``reduction``, ``ignore_index``
or ``reg``, a missing dataset...) and asserts that the message names the argument *and*
carries the fix. Device and dtype mismatches between a ground matrix and the input are
handled (the matrix follows the input), which is asserted too.
"""

from __future__ import annotations

import pytest
import torch

from wlearn import ground
from wlearn._checks import FIXES, check_positive_scalar, fix_for
from wlearn.losses import (
    ImportanceAwareLoss,
    LearnedGroundMatrix,
    MultiLabelKLLoss,
    OneHotWassersteinLoss,
    SinkhornLoss,
    SoftCrossEntropyLoss,
    SoftWassersteinLoss,
    SquaredEMDLoss,
    UnbalancedSinkhornLoss,
    WassersteinKLLoss,
)
from wlearn.metrics import ConfusionMatrix, OrdinalMetrics
from wlearn.ot import emd, sinkhorn, unbalanced_sinkhorn

torch.manual_seed(0)
K = 4
M = ground.line(K)
LOGITS = torch.randn(3, K)
PROBA = torch.softmax(LOGITS, 1)
Y = torch.tensor([0, 2, 3])


def raises(exc, *fragments):
    """Context manager: ``exc`` whose message contains every fragment (plain substrings)."""

    class _Ctx:
        def __enter__(self):
            self.cm = pytest.raises(exc)
            self.info = self.cm.__enter__()
            return self.info

        def __exit__(self, *args):
            out = self.cm.__exit__(*args)
            msg = str(self.info.value)
            for f in fragments:
                assert f in msg, f"{f!r} not in {msg!r}"
            return out

    return _Ctx()


# --- losses given logits where probabilities are expected ------------------------------------


def test_sinkhorn_loss_given_logits_says_apply_softmax():
    with raises(ValueError, "input: expected non-negative", "torch.softmax(logits, dim=1)"):
        SinkhornLoss(M, 0.1)(LOGITS, PROBA)


def test_sinkhorn_loss_given_positive_scores_says_apply_softmax():
    with raises(ValueError, "input: expected rows on the probability simplex", "torch.softmax"):
        SinkhornLoss(M, 0.1)(LOGITS.exp(), PROBA)


def test_unbalanced_loss_given_logits_names_softmax_or_exp():
    with raises(ValueError, "input: expected non-negative", "torch.exp(logits)"):
        UnbalancedSinkhornLoss(M, 0.1, 1.0)(LOGITS, PROBA)


def test_sinkhorn_loss_target_not_normalized_says_divide_by_sum_or_one_hot():
    with raises(
        ValueError,
        "target: expected rows on the probability simplex",
        "target / target.sum(1, keepdim=True)",
        "one_hot",
    ):
        SinkhornLoss(M, 0.1)(PROBA, 2 * PROBA)


def test_squared_emd_soft_target_not_normalized():
    with raises(ValueError, "target: expected rows on the probability simplex", "divide each row"):
        SquaredEMDLoss()(LOGITS, 2 * PROBA)


def test_soft_losses_given_logits_as_target():
    with raises(ValueError, "target: expected non-negative probabilities", "torch.softmax"):
        SoftCrossEntropyLoss()(LOGITS[:, :, None], LOGITS[:, :, None])


# --- targets: dtype, range, shape, device ---------------------------------------------------


def test_one_hot_loss_float_target_says_long_or_argmax():
    with raises(
        TypeError, "target: expected integer class indices", "target.long()", "target.argmax(1)"
    ):
        OneHotWassersteinLoss(M)(LOGITS, torch.nn.functional.one_hot(Y, K).float())


def test_one_hot_loss_target_out_of_range_says_remap_or_ignore_index():
    with raises(
        ValueError, "target: expected class indices in [0, 3]", "to_train_ids", "ignore_index="
    ):
        OneHotWassersteinLoss(M)(LOGITS, torch.tensor([0, 1, 7]))


def test_one_hot_loss_one_hot_shaped_integer_target():
    with raises(ValueError, "target: expected shape (3,)", "without a class dimension"):
        OneHotWassersteinLoss(M)(LOGITS, torch.nn.functional.one_hot(Y, K))


def test_one_hot_loss_given_predicted_classes_as_logits():
    with raises(TypeError, "logits: expected a floating tensor", "not predicted class indices"):
        OneHotWassersteinLoss(M)(LOGITS.argmax(1, keepdim=True).expand(3, K), Y)


def test_importance_loss_validates_its_target():
    z = torch.randn(2, 19)
    with raises(TypeError, "target: expected integer class indices", "target.long()"):
        ImportanceAwareLoss()(z, torch.zeros(2))
    with raises(ValueError, "target: expected class indices in [0, 18]", "to_train_ids"):
        ImportanceAwareLoss()(z, torch.tensor([3, 33]))
    with raises(ValueError, "logits: expected shape (N, 19, ...)", "one output channel per class"):
        ImportanceAwareLoss()(torch.randn(2, 5), torch.zeros(2, dtype=torch.long))


def test_soft_loss_integer_target_names_the_alternatives():
    with raises(
        TypeError, "target: expected floating probabilities", "OneHotWassersteinLoss", "one_hot"
    ):
        SoftWassersteinLoss(M, 0.1)(LOGITS[:, :, None], Y[:, None])


def test_soft_loss_mask_of_wrong_dtype():
    with raises(TypeError, "mask: expected a torch.bool tensor", "mask.bool()"):
        SoftCrossEntropyLoss()(LOGITS[:, :, None], PROBA[:, :, None], mask=torch.ones(3, 1))


def test_multilabel_empty_row_says_drop_items():
    t = torch.tensor([[1.0, 0, 0, 0], [0, 0, 0, 0]])
    with raises(
        ValueError, "target: expected every row to carry at least one tag", "target.sum(1) > 0"
    ):
        MultiLabelKLLoss()(torch.randn(2, K), t)


def test_metrics_float_target_says_long():
    with raises(TypeError, "target: expected integer class indices", "target.long()"):
        OrdinalMetrics(K).update(Y, Y.float())


def test_confusion_matrix_labelids_say_to_train_ids():
    with raises(ValueError, "expected classes in [0, 19)", "to_train_ids"):
        ConfusionMatrix(19).update(torch.tensor([1, 2]), torch.tensor([7, 26]))


# --- ground matrices: size, device, dtype ---------------------------------------------------


def test_ground_matrix_of_wrong_size_says_build_one_per_class():
    with raises(
        ValueError, "D: expected a (4, 4) matrix for logits with 4 classes", "wlearn.ground.line(4)"
    ):
        OneHotWassersteinLoss(ground.line(5))(LOGITS, Y)
    with raises(ValueError, "M: expected a (4, 4) matrix", "wlearn.ground.line(4)"):
        SoftWassersteinLoss(ground.line(5), 0.1)(LOGITS[:, :, None], PROBA[:, :, None])


def test_histograms_of_wrong_size_name_the_bins_of_M():
    with raises(ValueError, "a: expected shape (5,) or (B, 5)", "one bin per row of M"):
        emd(PROBA[0], torch.ones(5) / 5, ground.line(5))


def test_negative_or_non_square_ground_matrix_names_wlearn_ground():
    with raises(ValueError, "M: expected non-negative values", "wlearn.ground"):
        SinkhornLoss(-M, 0.1)
    with raises(ValueError, "M: expected a square (K, K) matrix", "wlearn.ground"):
        sinkhorn(PROBA[0], PROBA[1], M[:3], 0.1)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_ground_matrix_follows_the_input_dtype(dtype):
    """M is float64, the input may be float32: cast, not a torch dtype error."""
    h, y = PROBA.to(dtype), torch.nn.functional.one_hot(Y, K).to(dtype)
    assert SinkhornLoss(M, 0.1)(h, y).dtype == dtype
    assert OneHotWassersteinLoss(M)(LOGITS.to(dtype), Y).dtype == dtype
    assert sinkhorn(h[0], y[0], M, 0.1).value.dtype == dtype
    assert ImportanceAwareLoss()(torch.randn(2, 19, dtype=dtype), Y[:2]).dtype == dtype


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_ground_matrix_follows_the_input_device():  # pragma: no cover - GPU only
    dev = torch.device("cuda")
    h, y = PROBA.to(dev), torch.nn.functional.one_hot(Y, K).double().to(dev)
    assert SinkhornLoss(M, 0.1)(h, y.float()).device.type == "cuda"
    assert OneHotWassersteinLoss(M)(LOGITS.to(dev), Y.to(dev)).device.type == "cuda"
    assert (
        ImportanceAwareLoss()(torch.randn(2, 19, device=dev), Y[:2].to(dev)).device.type == "cuda"
    )
    assert sinkhorn(h[0], y[0], M, 0.1).value.device.type == "cuda"
    with raises(ValueError, "target: expected device", "target.to(logits.device)"):
        OneHotWassersteinLoss(M)(LOGITS.to(dev), Y)


def test_target_on_another_device_says_move_it():
    """The device check fires without a GPU: a 'meta' tensor is on another device."""
    with raises(ValueError, "target: expected device cpu", "target.to(logits.device)"):
        OneHotWassersteinLoss(M)(LOGITS, Y.to("meta"))
    with raises(ValueError, "target: expected device cpu", "target.to(logits.device)"):
        SoftCrossEntropyLoss()(LOGITS[:, :, None], PROBA[:, :, None].to("meta"))


# --- settings: reduction, ignore_index, reg -------------------------------------------------


@pytest.mark.parametrize(
    "make",
    [
        lambda: SinkhornLoss(M, 0.1, reduction="avg"),
        lambda: OneHotWassersteinLoss(M, reduction="avg"),
        lambda: SoftWassersteinLoss(M, 0.1, reduction="avg"),
        lambda: ImportanceAwareLoss(reduction="avg"),
        lambda: WassersteinKLLoss(M, 0.1, reduction="avg"),
    ],
)
def test_bad_reduction_names_the_choices(make):
    with raises(ValueError, "reduction: expected one of", "use 'mean'", "'none' (one value per"):
        make()


@pytest.mark.parametrize(
    "make",
    [
        lambda: OneHotWassersteinLoss(M, ignore_index=255.0),
        lambda: SoftCrossEntropyLoss(ignore_index=None),
        lambda: ImportanceAwareLoss(ignore_index=True),
    ],
)
def test_bad_ignore_index_names_the_usual_values(make):
    with raises(TypeError, "ignore_index: expected an int", "-100", "255 (Cityscapes"):
        make()


@pytest.mark.parametrize("reg", [0, -1.0, float("nan")])
def test_bad_reg_suggests_a_value_and_emd(reg):
    with raises(ValueError, "reg: expected a finite number > 0", "0.1 * M.max()", "wlearn.ot.emd"):
        SinkhornLoss(M, reg)
    with raises(ValueError, "reg: expected", "0.1 * M.max()"):
        sinkhorn(PROBA[0], PROBA[1], M, reg)


def test_bad_reg_m_says_what_it_does():
    with raises(ValueError, "reg_m: expected a finite number > 0", "marginal relaxation"):
        unbalanced_sinkhorn(PROBA[0], PROBA[1], M, 0.1, 0.0)
    with raises(ValueError, "reg_m[1]: expected", "marginal relaxation"):
        UnbalancedSinkhornLoss(M, 0.1, (1.0, -1.0))


def test_every_fix_is_a_sentence_and_names_fall_back():
    assert all(isinstance(v, str) and len(v) > 10 for v in FIXES.values())
    assert fix_for("reg_m[0]", "positive") == FIXES[("reg_m", "positive")]
    assert fix_for("lr", "positive") == FIXES[("any", "positive")]
    with raises(ValueError, "tau: expected", "pass a finite number > 0"):
        check_positive_scalar(0, "tau")
    with raises(ValueError, "my_arg: expected", "custom fix"):
        check_positive_scalar(0, "my_arg", fix="custom fix")


def test_learned_ground_features_of_wrong_width():
    lg = LearnedGroundMatrix(K, 8)
    with raises(ValueError, "features: expected shape (N, 8)", "num_features=8"):
        lg.update(torch.randn(3, 5), Y)


def test_sinkhorn_loss_class_indices_say_one_hot_and_other_device_says_move():
    with raises(ValueError, "target: expected shape (B, 4)", "one_hot(target, 4).float()"):
        SinkhornLoss(M, 0.1)(PROBA, Y)
    with raises(ValueError, "target: expected device cpu", "target.to(input.device)"):
        SinkhornLoss(M, 0.1)(PROBA, PROBA.to("meta"))
    with raises(ValueError, "target: expected device cpu", "target.to(input.device)"):
        UnbalancedSinkhornLoss(M, 0.1, 1.0)(PROBA, PROBA.to("meta"))
