"""Figures of the study: speedup and energy ratio against the pruning rate per
platform, storage against the rate per bit width, and energy breakdowns per network.

Built with matplotlib's object-oriented API (a :class:`~matplotlib.figure.Figure`
on its own Agg canvas): no pyplot, no change to the global backend or rcParams, so
the functions serve notebooks as well as the study. Each figure has three
functions:

- ``*_data`` (:mod:`simulator.plots.data`, no matplotlib import) selects the exact
  rows and columns the figure shows, sorted, so that equal data gives equal frames;
  :func:`figure_digest` hashes them with the plotting code, so that a caller can
  skip a figure that would come out the same;
- ``figure_*`` draws and returns a :class:`~matplotlib.figure.Figure`, writing
  nothing: show it as any Figure (in Jupyter with the inline backend,
  ``display(fig)``) or save it with ``fig.savefig``;
- ``plot_*`` writes that figure as ``STEM.png`` and ``STEM.svg``.

The drawing functions are imported on first use, so that code that only selects
and hashes (a resumed study) does not import matplotlib."""

from __future__ import annotations

from simulator.plots.data import (
    COMPONENTS,
    FAMILIES,
    FORMATS,
    compute_data,
    energy_data,
    figure_digest,
    storage_data,
)

_DRAWING = {
    "DPI": "layout",
    "save_figure": "layout",
    "figure_compute": "figures",
    "figure_storage": "figures",
    "figure_energy_breakdown": "figures",
    "plot_compute": "figures",
    "plot_storage": "figures",
    "plot_energy_breakdown": "figures",
}

__all__ = [
    "COMPONENTS",
    "FAMILIES",
    "FORMATS",
    "compute_data",
    "energy_data",
    "figure_digest",
    "storage_data",
    *_DRAWING,
]


def __getattr__(name: str):
    """The drawing functions, imported (with matplotlib) on first use."""
    if name in _DRAWING:
        import importlib

        return getattr(importlib.import_module(f"simulator.plots.{_DRAWING[name]}"), name)
    raise AttributeError(f"module 'simulator.plots' has no attribute {name!r}")
