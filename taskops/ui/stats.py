"""``StatCards``: the row of quick stats on top of a list screen (a label over a number)."""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence
from typing import Any

import ipywidgets as widgets

__all__ = ["StatCards"]


class StatCards(widgets.HBox):  # type: ignore[misc]
    """One card per ``(key, label, css)``: the card has the classes ``taskops-stat`` and
    ``taskops-stat-<css>``, its number ``taskops-stat-value``. ``show(values)`` sets the
    numbers by key (widgets are updated, never rebuilt)."""

    def __init__(self, cards: Sequence[tuple[str, str, str]]) -> None:
        super().__init__(layout=widgets.Layout(margin="0 0 8px 0", flex_flow="row wrap"))
        self.values: dict[str, widgets.HTML] = {}
        boxes = []
        for key, label, css in cards:
            number = widgets.HTML("0")
            number.add_class("taskops-stat-value")
            card = widgets.VBox(
                [widgets.HTML(f'<span style="color:#666">{html.escape(label)}</span>'), number],
                layout=widgets.Layout(
                    border="1px solid #ddd",
                    padding="4px 16px",
                    margin="0 8px 0 0",
                    min_width="120px",
                ),
            )
            card.add_class("taskops-stat")
            card.add_class(f"taskops-stat-{css}")
            self.values[key] = number
            boxes.append(card)
        self.children = boxes

    def show(self, values: Mapping[str, Any]) -> None:
        """Show each value under its key (keys without a card are ignored)."""
        for key, value in values.items():
            if key in self.values:
                self.values[
                    key
                ].value = f'<span style="font-size:1.6em">{html.escape(str(value))}</span>'
