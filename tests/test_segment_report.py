"""Liu et al.'s tables as printed (report module): the paper's rows, summaries, paired
differences and a table with every header whole."""

import numpy as np
import pytest
import torch

from wlearn.data.cityscapes import CLASS_NAMES
from wlearn.segment import report


def run(iou_g4, miou, sev=0.1):
    iou = torch.full((19,), 0.5, dtype=torch.float64)
    for name, v in zip(report.G4_CLASSES, iou_g4, strict=True):
        iou[CLASS_NAMES.index(name)] = v
    return {"iou": iou, "miou": miou, "mean_severity": sev}


def test_paper_rows_are_the_printed_tables():
    enet = report.paper_row(report.PAPER_TABLE1_ENET["ENet"])
    assert enet["iou"][0] == 65.5 and enet["miou"] == 58.3
    assert enet["g4"] == pytest.approx(376.1 / 7)  # the last column is not the Group-4 mean
    for rows in (report.PAPER_TABLE1_ENET, report.PAPER_TABLE3):
        for v in rows.values():
            assert abs(report.paper_row(v)["g4"] - v[7]) > 1
    # Table 3's text says "more than 5%" over LRENT; its own Person column gains 3.7 to 4.5
    person = [
        report.PAPER_TABLE3[k][0] - report.PAPER_TABLE3["LRENT"][0]
        for k in ("L_d", "L_d^2", "L_Huber")
    ]
    assert np.allclose(person, [3.7, 4.0, 4.5])
    with pytest.raises(ValueError, match="values"):
        report.paper_row([1, 2, 3])


def test_summaries_paired_differences_and_the_table():
    a = [run([0.6] * 7, 0.55, 0.2), run([0.7] * 7, 0.57, 0.1)]
    b = [run([0.5] * 7, 0.56, 0.3), run([0.4] * 7, 0.50, 0.3)]
    s = report.summarize(a)
    assert s["g4"][0] == pytest.approx(65.0) and s["g4"][1] == pytest.approx(
        np.std([60, 70], ddof=1)
    )
    assert np.allclose(report.paired(a, b), [10, 30]) and np.allclose(
        report.paired(a, b, "miou"), [-1, 7]
    )
    assert np.allclose(report.paired(a, b, "severity"), [-0.1, -0.2])
    text = report.format_table(
        {"CE": b, "+L_d": a}, {"+L_d": ("+L_d", report.PAPER_TABLE1_ENET["+L_d"])}, title="T"
    )
    for h in (*report.G4_HEADERS, "G4 mean", "mIoU"):
        assert h in text.splitlines()[1]
    assert "paper +L_d" in text and "90.7" in text and "±" in text
    with pytest.raises(ValueError, match="runs_b"):
        report.paired(a, b[:1])


def test_read_metrics_format_bench_and_plot(tmp_path):
    import matplotlib

    matplotlib.use("agg")
    path = tmp_path / "metrics.csv"
    path.write_text("epoch,train_loss,val_miou\n1,0.5,0.25\n2,0.4,\n")
    m = report.read_metrics(path)
    assert m["epoch"].tolist() == [1, 2] and np.isnan(m["val_miou"][1])
    (tmp_path / "empty.csv").write_text("epoch\n")
    with pytest.raises(ValueError, match="no rows"):
        report.read_metrics(tmp_path / "empty.csv")
    res = {
        "device": "cpu",
        "size": [64, 128],
        "batch_size": 2,
        "amp": "none",
        "losses": {
            "ce": {"images_per_s": 10.0, "peak_mib": 100.0},
            "wass-d": {"images_per_s": 5.0, "peak_mib": 150.0},
        },
    }
    text = report.format_bench(res)
    assert "speed / CE" in text and "0.50" in text and "1.50" in text
    ax = report.plot_class_iou(run([0.4] * 7, 0.5), title="t")
    assert len(ax.patches) == 19 and ax.get_ylabel() == "IoU (%)"
