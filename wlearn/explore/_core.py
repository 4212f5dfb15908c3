"""The generic part of :mod:`wlearn.explore`: :class:`Control`, :class:`Explorer`, the
static/live switch and the drawing helpers the four explorers share.

Introduced in notebooks/02_sinkhorn.ipynb (see :mod:`wlearn.explore`).
"""

from __future__ import annotations

import io
import math
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from wlearn._env import _FALSE, _TRUE


def is_static() -> bool:
    """True when ``WLEARN_STATIC`` asks for static figures only (1/true/yes/on).

    Returns
    -------
    bool
        The course site (``docs/conf.py``) and ``make notebooks`` set it; a bad value raises
        ValueError.

    Introduced in notebooks/02_sinkhorn.ipynb (the first explorer).
    """
    value = os.environ.get("WLEARN_STATIC")
    v = (value or "").strip().lower()
    if v in _TRUE:
        return True
    if v in _FALSE:
        return False
    raise ValueError(
        f"WLEARN_STATIC: expected one of 0/1, true/false, yes/no, on/off; got {value!r}"
    )


def _ipywidgets():
    try:
        import ipywidgets
    except ImportError as err:
        raise ImportError(
            "ipywidgets is needed for the live explorers: pip install ipywidgets (or install the "
            "course with pip install -e '.[lab]'); set WLEARN_STATIC=1 for the static figure only"
        ) from err
    return ipywidgets


@dataclass(frozen=True)
class Control:
    """One control of an :class:`Explorer`.

    Exactly one kind: ``options`` (a selection slider, or a dropdown with ``dropdown=True``),
    ``low``/``high``/``step`` (a float slider; logarithmic with ``log=True``, ``step`` then in
    decades; an integer slider with ``integer=True``).

    Parameters
    ----------
    name : str
        The keyword the explorer's draw function receives.
    value : object
        The initial value.
    options : tuple, optional
        The values of a selection slider or dropdown.
    low, high, step : float, optional
        The range and step of a numeric slider.
    log : bool
        A logarithmic slider (``step`` in decades).
    integer : bool
        An integer slider.
    dropdown : bool
        Show ``options`` as a dropdown instead of a selection slider.
    description : str, optional
        The label shown (default: ``name``).

    Introduced in notebooks/02_sinkhorn.ipynb (the ``reg`` slider).
    """

    name: str
    value: Any
    options: tuple | None = None
    low: float | None = None
    high: float | None = None
    step: float | None = None
    log: bool = False
    integer: bool = False
    dropdown: bool = False
    description: str | None = None

    def __post_init__(self):
        if self.options is not None:
            if len(self.options) == 0:
                raise ValueError(f"{self.name}: expected at least one option, got none")
        elif self.low is None or self.high is None or not self.low < self.high:
            raise ValueError(
                f"{self.name}: expected options or a range low < high, "
                f"got low={self.low!r}, high={self.high!r}"
            )
        elif self.log and self.low <= 0:
            raise ValueError(f"{self.name}: a log slider needs low > 0, got {self.low!r}")
        self.check(self.value)

    def check(self, v):
        """Return ``v`` if this control can take it, else raise ValueError naming the control.

        Parameters
        ----------
        v : object
            A candidate value.
        """
        if self.options is not None:
            if v not in self.options:
                raise ValueError(f"{self.name}: expected one of {list(self.options)}, got {v!r}")
            return v
        ok = isinstance(v, (int, float, np.number)) and not isinstance(v, bool)
        if not ok or not self.low - 1e-12 <= v <= self.high + 1e-12:
            raise ValueError(
                f"{self.name}: expected a number in [{self.low:g}, {self.high:g}], got {v!r}"
            )
        return int(v) if self.integer else float(v)

    def build(self, widgets):
        """The ipywidgets control. Sliders redraw when released (``continuous_update=False``),
        not on every step of a drag.

        Parameters
        ----------
        widgets : module
            The ipywidgets module.
        """
        common = {
            "description": self.description or self.name,
            "style": {"description_width": "initial"},
        }
        if self.options is not None:
            opts = [(f"{o:g}" if isinstance(o, float) else str(o), o) for o in self.options]
            if self.dropdown:
                return widgets.Dropdown(options=opts, value=self.value, **common)
            return widgets.SelectionSlider(
                options=opts, value=self.value, continuous_update=False, **common
            )
        common["continuous_update"] = False
        if self.integer:
            return widgets.IntSlider(
                value=self.value, min=self.low, max=self.high, step=self.step or 1, **common
            )
        if self.log:
            return widgets.FloatLogSlider(
                value=self.value,
                base=10,
                min=math.log10(self.low),
                max=math.log10(self.high),
                step=self.step or 0.1,
                **common,
            )
        return widgets.FloatSlider(
            value=self.value,
            min=self.low,
            max=self.high,
            step=self.step or (self.high - self.low) / 20,
            **common,
        )


class Explorer:
    """A figure driven by controls, with a static rendering.

    Parameters
    ----------
    draw : callable
        ``draw(axes, **values) -> dict``: draws one setting into ``axes`` (a list of
        ``panels`` Axes) and returns a summary (numbers shown in the titles).
    controls : sequence of Control
    static : sequence
        The settings of the static snapshot, one column each: dicts ``{control name: value}``
        (missing names take the control's default), or plain values when there is one control.
    panels : int
        Axes per setting.
    title : str
    panel_size : (float, float)
        Inches per panel.

    Introduced in notebooks/02_sinkhorn.ipynb (see :func:`wlearn.explore.sinkhorn_reg`).
    """

    def __init__(
        self,
        draw: Callable[..., dict],
        controls: Sequence[Control],
        static: Sequence,
        *,
        panels: int = 1,
        title: str = "",
        panel_size=(3.4, 3.0),
    ):
        if not callable(draw):
            raise TypeError(
                f"draw: expected a callable draw(axes, **values), got {type(draw).__name__}"
            )
        self.controls = {c.name: c for c in controls}
        if not self.controls:
            raise ValueError("controls: expected at least one Control, got none")
        if isinstance(panels, bool) or not isinstance(panels, int) or panels < 1:
            raise ValueError(f"panels: expected an integer >= 1, got {panels!r}")
        self.draw, self.panels, self.title, self.panel_size = draw, panels, title, panel_size
        if len(static) == 0:
            raise ValueError(
                "static: expected at least one setting for the static snapshot, got none"
            )
        self.static = [self._settings(s) for s in static]
        self.figure = self.summary = self.last_static = None
        self.widgets: dict = {}
        self.output = None

    def _settings(self, s) -> dict:
        if not isinstance(s, Mapping):
            if len(self.controls) != 1:
                raise ValueError(
                    f"static: expected dicts {{control name: value}} with "
                    f"{len(self.controls)} controls, got {s!r}"
                )
            s = {next(iter(self.controls)): s}
        unknown = set(s) - set(self.controls)
        if unknown:
            raise ValueError(
                f"static: expected names among {list(self.controls)}, got {sorted(unknown)}"
            )
        return {n: c.check(s.get(n, c.value)) for n, c in self.controls.items()}

    def static_figure(self):
        """Small multiples over the static settings: a Figure of ``panels`` rows and one column
        per setting, titled "static snapshot"."""
        from matplotlib.figure import Figure

        n, (w, h) = len(self.static), self.panel_size
        fig = Figure(figsize=(w * n, h * self.panels + 0.5), layout="constrained")
        axes = fig.subplots(self.panels, n, squeeze=False)
        for j, values in enumerate(self.static):
            self.draw(list(axes[:, j]), **values)
        fig.suptitle(f"static snapshot: {self.title}")
        self.last_static = fig
        return fig

    def update(self, **values) -> dict:
        """Draw one setting into a new figure, show it in the widget's output if built, and
        return the draw's summary.

        Parameters
        ----------
        **values : object
            ``{control name: value}``; missing names take the controls' current or default
            values.
        """
        from matplotlib.figure import Figure

        current = {n: w.value for n, w in self.widgets.items()}
        settings = self._settings({**current, **values})
        w, h = self.panel_size
        fig = Figure(figsize=(w * self.panels, h + 0.4), layout="constrained")
        axes = fig.subplots(1, self.panels, squeeze=False)
        summary = self.draw(list(axes[0]), **settings)
        fig.suptitle(self.title)
        self.figure, self.summary = fig, summary
        if self.output is not None:
            from IPython.display import Image

            self.output.outputs = ()
            self.output.append_display_data(Image(data=_png(fig)))
        return summary

    def widget(self):
        """The live control: the controls above an output redrawn on every change."""
        widgets = _ipywidgets()
        self.widgets = {n: c.build(widgets) for n, c in self.controls.items()}
        self.output = widgets.Output()
        for wdg in self.widgets.values():
            wdg.observe(lambda change: self.update(), names="value")
        self.update()
        return widgets.VBox([*self.widgets.values(), self.output])

    def show(self) -> None:
        """Display the static snapshot and, unless ``WLEARN_STATIC=1``, the live widget."""
        static = is_static()
        fig = self.static_figure()
        try:
            from IPython.display import Image, display
        except ImportError:  # no IPython: nothing to display into
            return
        display(Image(data=_png(fig)))
        if not static:
            display(self.widget())


def _png(fig) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=80)
    return buf.getvalue()


def _pick(values: Sequence, n: int = 4) -> list:
    """At most ``n`` evenly spaced entries of ``values``, the ends included."""
    if len(values) <= n:
        return list(values)
    return [values[i] for i in np.linspace(0, len(values) - 1, n).round().astype(int)]


def _positive_list(values, name: str) -> tuple[float, ...]:
    try:
        out = tuple(float(v) for v in values)
    except (TypeError, ValueError):
        raise ValueError(
            f"{name}: expected a sequence of positive numbers, got {values!r}"
        ) from None
    if not out or not all(np.isfinite(v) and v > 0 for v in out) or len(set(out)) != len(out):
        raise ValueError(f"{name}: expected distinct finite numbers > 0, got {values!r}")
    return out


def _plan_image(ax, plan, title):
    im = ax.imshow(plan, cmap="magma")
    ax.figure.colorbar(im, ax=ax, label="mass T_ij", shrink=0.8)
    ax.set_xlabel("class j (columns)")
    ax.set_ylabel("class i (rows)")
    ax.set_xticks([])
    ax.set_yticks([])
    ax.set_title(title, fontsize=9)


# --- reg against the Sinkhorn plan (lesson 02) ------------------------------------------------
