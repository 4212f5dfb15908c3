"""ENet (Paszke, Chaurasia, Kim & Culurciello 2016), in plain torch.

Encoder: initial block (3x3 stride-2 convolution concatenated with a 2x2 max-pool), stage 1
(a downsampling bottleneck and four regular ones), stages 2 and 3 (regular, dilated 2, 4, 8,
16 and asymmetric 5x1/1x5 bottlenecks; stage 2 starts by downsampling), PReLU activations.
Decoder: stages 4 and 5 (upsampling bottlenecks that max-unpool with the encoder's pooling
indices, then regular ones), ReLU activations, and a final 2x2-stride transposed
convolution to full resolution. Spatial dropout (``Dropout2d``) regularizes every
bottleneck: p = 0.01 in stage 1, 0.1 afterwards (Table 1 and Sec. 3 of the paper).

Introduced in notebooks/08_importance_aware_segmentation.ipynb.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def _act(relu: bool, ch: int) -> nn.Module:
    return nn.ReLU(inplace=True) if relu else nn.PReLU(ch)


class InitialBlock(nn.Module):
    """``cat(conv3x3_stride2(x), maxpool2x2(x))`` then BN and PReLU: (B, 3, H, W) -> (B, out, H/2, W/2).

    The initial block of Paszke et al. 2016 (Fig. 2a; Table 1, "initial").

    Parameters
    ----------
    in_ch : int
        Input channels (3 for RGB).
    out_ch : int
        Output channels (> ``in_ch``): ``out_ch - in_ch`` convolution channels next to the
        ``in_ch`` pooled ones (16 = 13 + 3 in the paper).
    """

    def __init__(self, in_ch: int, out_ch: int):
        super().__init__()
        if out_ch <= in_ch:
            raise ValueError(
                f"out_ch: expected more than in_ch={in_ch} channels, got {out_ch}; "
                "the pooled input channels are part of the output"
            )
        self.conv = nn.Conv2d(in_ch, out_ch - in_ch, 3, stride=2, padding=1, bias=False)
        self.pool = nn.MaxPool2d(2)
        self.bn, self.act = nn.BatchNorm2d(out_ch), nn.PReLU(out_ch)

    def forward(self, x):
        """Apply the block.

        Parameters
        ----------
        x : torch.Tensor, shape (B, in_ch, H, W)
            ``H`` and ``W`` even.

        Returns
        -------
        torch.Tensor, shape (B, out_ch, H/2, W/2)
        """
        return self.act(self.bn(torch.cat([self.conv(x), self.pool(x)], 1)))


class Bottleneck(nn.Module):
    """Regular, dilated or asymmetric bottleneck (same size in and out).

    ``x + dropout(expand(conv(project(x))))``: 1x1 projection to ``ch // 4`` channels, a 3x3
    (``dilation``) or 5x1 then 1x5 (``asymmetric``) convolution, 1x1 expansion; BN after each
    (Paszke et al. 2016, Fig. 2b and Table 1).

    Parameters
    ----------
    ch : int
        Channels in and out.
    dilation : int
        Dilation of the 3x3 convolution (1: regular).
    asymmetric : bool
        Use the 5x1 and 1x5 pair instead of the 3x3 convolution.
    dropout : float
        Spatial dropout probability of the branch.
    relu : bool
        ReLU activations (decoder) instead of PReLU (encoder).
    """

    def __init__(
        self,
        ch: int,
        *,
        dilation: int = 1,
        asymmetric: bool = False,
        dropout: float = 0.1,
        relu: bool = False,
    ):
        super().__init__()
        mid = max(1, ch // 4)
        if asymmetric:
            conv = [
                nn.Conv2d(mid, mid, (5, 1), padding=(2, 0), bias=False),
                nn.Conv2d(mid, mid, (1, 5), padding=(0, 2), bias=False),
            ]
        else:
            conv = [nn.Conv2d(mid, mid, 3, padding=dilation, dilation=dilation, bias=False)]
        self.branch = nn.Sequential(
            nn.Conv2d(ch, mid, 1, bias=False),
            nn.BatchNorm2d(mid),
            _act(relu, mid),
            *conv,
            nn.BatchNorm2d(mid),
            _act(relu, mid),
            nn.Conv2d(mid, ch, 1, bias=False),
            nn.BatchNorm2d(ch),
            nn.Dropout2d(dropout),
        )
        self.act = _act(relu, ch)

    def forward(self, x):
        """Apply the bottleneck.

        Parameters
        ----------
        x : torch.Tensor, shape (B, ch, H, W)

        Returns
        -------
        torch.Tensor, shape (B, ch, H, W)
        """
        return self.act(x + self.branch(x))


class DownBottleneck(nn.Module):
    """Downsampling bottleneck: main path max-pool (indices kept) zero-padded to ``out_ch``;
    branch 2x2 stride-2 projection, 3x3 conv, 1x1 expansion. Returns ``(y, indices)``
    (Paszke et al. 2016, Fig. 2b and Table 1, "downsampling").

    Parameters
    ----------
    in_ch, out_ch : int
        Channels in and out (``out_ch >= in_ch``).
    dropout : float
        Spatial dropout probability of the branch.
    """

    def __init__(self, in_ch: int, out_ch: int, *, dropout: float = 0.1):
        super().__init__()
        mid = max(1, in_ch // 4)
        self.pool = nn.MaxPool2d(2, return_indices=True)
        self.branch = nn.Sequential(
            nn.Conv2d(in_ch, mid, 2, stride=2, bias=False),
            nn.BatchNorm2d(mid),
            nn.PReLU(mid),
            nn.Conv2d(mid, mid, 3, padding=1, bias=False),
            nn.BatchNorm2d(mid),
            nn.PReLU(mid),
            nn.Conv2d(mid, out_ch, 1, bias=False),
            nn.BatchNorm2d(out_ch),
            nn.Dropout2d(dropout),
        )
        self.extra = out_ch - in_ch
        self.act = nn.PReLU(out_ch)

    def forward(self, x):
        """Apply the bottleneck.

        Parameters
        ----------
        x : torch.Tensor, shape (B, in_ch, H, W)
            ``H`` and ``W`` even.

        Returns
        -------
        y : torch.Tensor, shape (B, out_ch, H/2, W/2)
        indices : torch.Tensor, shape (B, in_ch, H/2, W/2)
            The max-pooling indices, for :class:`UpBottleneck`.
        """
        main, idx = self.pool(x)
        main = F.pad(main, (0, 0, 0, 0, 0, self.extra))  # (B, out_ch, H/2, W/2): zero channels
        return self.act(main + self.branch(x)), idx


class UpBottleneck(nn.Module):
    """Upsampling bottleneck: main path 1x1 conv + BN then max-unpooling with the encoder's
    indices; branch 1x1 projection, 3x3 stride-2 transposed conv, 1x1 expansion; ReLU
    (Paszke et al. 2016, Table 1, "upsampling").

    Parameters
    ----------
    in_ch, out_ch : int
        Channels in and out (``out_ch`` = the channels of the matching downsampling input).
    dropout : float
        Spatial dropout probability of the branch.
    """

    def __init__(self, in_ch: int, out_ch: int, *, dropout: float = 0.1):
        super().__init__()
        mid = max(1, in_ch // 4)
        self.main = nn.Sequential(nn.Conv2d(in_ch, out_ch, 1, bias=False), nn.BatchNorm2d(out_ch))
        self.unpool = nn.MaxUnpool2d(2)
        self.proj = nn.Sequential(
            nn.Conv2d(in_ch, mid, 1, bias=False), nn.BatchNorm2d(mid), nn.ReLU(inplace=True)
        )
        self.up = nn.ConvTranspose2d(mid, mid, 3, stride=2, padding=1, output_padding=1, bias=False)
        self.rest = nn.Sequential(
            nn.BatchNorm2d(mid),
            nn.ReLU(inplace=True),
            nn.Conv2d(mid, out_ch, 1, bias=False),
            nn.BatchNorm2d(out_ch),
            nn.Dropout2d(dropout),
        )
        self.act = nn.ReLU(inplace=True)

    def forward(self, x, idx):
        """Apply the bottleneck.

        Parameters
        ----------
        x : torch.Tensor, shape (B, in_ch, h, w)
        idx : torch.Tensor, shape (B, out_ch, h, w)
            Pooling indices of the matching :class:`DownBottleneck`.

        Returns
        -------
        torch.Tensor, shape (B, out_ch, 2h, 2w)
        """
        main = self.unpool(self.main(x), idx)  # (B, out_ch, 2h, 2w)
        return self.act(main + self.rest(self.up(self.proj(x))))


def _ch(c: int, width: float) -> int:
    return max(8, 4 * round(c * width / 4))


class ENet(nn.Module):
    """ENet for semantic segmentation.

    Parameters
    ----------
    num_classes : int
        Output channels ``K`` (19 for Cityscapes).
    width : float
        Multiplies the channel counts 64 and 128 of the encoder (rounded to multiples of 4, at
        least 8) and 16 of the full-resolution layers (at least 16, the paper's value);
        ``width=1`` is the paper's network (about 0.36 M parameters), ``width=0.25`` a
        CPU-sized one for lessons.
    in_channels : int
        Input channels (3 for RGB).
    dropout : (float, float)
        Spatial dropout of stage 1 and of stages 2-5.

    Shapes: ``forward(x)`` with ``x`` (B, in_channels, H, W), any ``H, W`` (padded inside to a
    multiple of 8 and cropped back) -> logits (B, K, H, W).

    Introduced in notebooks/08_importance_aware_segmentation.ipynb.
    """

    def __init__(
        self, num_classes: int, width: float = 1.0, *, in_channels: int = 3, dropout=(0.01, 0.1)
    ):
        super().__init__()
        if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 2:
            raise ValueError(
                f"num_classes: expected an integer >= 2, got {num_classes!r}; pass "
                "the number of classes, e.g. 19 for Cityscapes"
            )
        if not isinstance(width, (int, float)) or not 0 < width <= 4:
            raise ValueError(
                f"width: expected a number in (0, 4], got {width!r}; 1 is the "
                "paper's network, 0.25 a CPU-sized one"
            )
        c0, c1, c2 = max(16, _ch(16, width)), _ch(64, width), _ch(128, width)
        if c0 <= in_channels:
            c0 = in_channels + 8
        p1, p2 = dropout
        self.num_classes, self.width = num_classes, width
        self.initial = InitialBlock(in_channels, c0)
        self.down1 = DownBottleneck(c0, c1, dropout=p1)
        self.stage1 = nn.Sequential(*[Bottleneck(c1, dropout=p1) for _ in range(4)])
        self.down2 = DownBottleneck(c1, c2, dropout=p2)

        def stage23():
            return [
                Bottleneck(c2, dropout=p2),
                Bottleneck(c2, dilation=2, dropout=p2),
                Bottleneck(c2, asymmetric=True, dropout=p2),
                Bottleneck(c2, dilation=4, dropout=p2),
                Bottleneck(c2, dropout=p2),
                Bottleneck(c2, dilation=8, dropout=p2),
                Bottleneck(c2, asymmetric=True, dropout=p2),
                Bottleneck(c2, dilation=16, dropout=p2),
            ]

        self.stage2 = nn.Sequential(*stage23())
        self.stage3 = nn.Sequential(*stage23())
        self.up4 = UpBottleneck(c2, c1, dropout=p2)
        self.stage4 = nn.Sequential(*[Bottleneck(c1, dropout=p2, relu=True) for _ in range(2)])
        self.up5 = UpBottleneck(c1, c0, dropout=p2)
        self.stage5 = Bottleneck(c0, dropout=p2, relu=True)
        self.fullconv = nn.ConvTranspose2d(c0, num_classes, 2, stride=2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Per-pixel logits.

        Parameters
        ----------
        x : torch.Tensor, shape (B, in_channels, H, W)
            Normalized images, any ``H, W``.

        Returns
        -------
        torch.Tensor, shape (B, K, H, W)
        """
        if x.ndim != 4:
            raise ValueError(
                f"x: expected shape (B, C, H, W), got {tuple(x.shape)}; add a batch "
                "dimension with x[None] for one image"
            )
        H, W = x.shape[-2:]
        ph, pw = (-H) % 8, (-W) % 8
        if ph or pw:
            x = F.pad(x, (0, pw, 0, ph))  # (B, C, H+ph, W+pw): a multiple of 8
        y = self.initial(x)
        y, idx1 = self.down1(y)
        y = self.stage1(y)
        y, idx2 = self.down2(y)
        y = self.stage3(self.stage2(y))
        y = self.stage4(self.up4(y, idx2))
        y = self.stage5(self.up5(y, idx1))
        return self.fullconv(y)[..., :H, :W]  # (B, K, H, W)
