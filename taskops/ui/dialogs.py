"""Modal dialogs (Vuetify ``v-dialog``) around ipywidgets content."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import ipywidgets as widgets
import traitlets
from ipyvuetify.VuetifyTemplate import VuetifyTemplate
from ipywidgets.widgets.widget import widget_serialization

__all__ = ["ConfirmDialog", "Dialog"]


class Dialog(VuetifyTemplate):
    """A persistent modal with a title, an ipywidgets ``body`` and a close button. It is
    shown while ``shown`` is True; the buttons that act live in the body."""

    shown = traitlets.Bool(False).tag(sync=True)
    title = traitlets.Unicode("").tag(sync=True)
    width = traitlets.Int(720).tag(sync=True)
    css_class = traitlets.Unicode("taskops-dialog").tag(sync=True)
    body = traitlets.Instance(widgets.Widget, allow_none=True).tag(
        sync=True, **widget_serialization
    )
    template = traitlets.Unicode(
        """
<template>
  <v-dialog v-model="shown" persistent scrollable :max-width="width">
    <v-card :class="css_class">
      <v-card-title class="d-flex align-center">
        <span class="text-h6">{{ title }}</span>
        <v-spacer></v-spacer>
        <v-btn icon="mdi-close" variant="text" size="small" class="taskops-dialog-close"
               @click="shown = false"></v-btn>
      </v-card-title>
      <v-card-text><jupyter-widget v-if="body" :widget="body"></jupyter-widget></v-card-text>
    </v-card>
  </v-dialog>
</template>
"""
    ).tag(sync=True)

    def __init__(self, *, title: str = "", css_class: str = "taskops-dialog", **kwargs: Any):
        super().__init__(title=title, css_class=css_class, **kwargs)

    def show(self) -> None:
        self.shown = True

    def hide(self) -> None:
        self.shown = False


class ConfirmDialog(Dialog):
    """Asks before something that cannot be undone: ``ask(title, text, action)`` shows it,
    and Confirm calls ``action`` (then hides the dialog); Cancel only hides it."""

    def __init__(self) -> None:
        self.text = widgets.HTML()
        self.text.add_class("taskops-confirm-text")
        self.confirm_button = widgets.Button(description="Confirm", button_style="danger")
        self.confirm_button.add_class("taskops-confirm-yes")
        self.cancel_button = widgets.Button(description="Cancel")
        self.cancel_button.add_class("taskops-confirm-no")
        self._action: Callable[[], Any] | None = None
        self.confirm_button.on_click(lambda _b: self.confirm())
        self.cancel_button.on_click(lambda _b: self.hide())
        buttons = widgets.HBox(
            [self.cancel_button, self.confirm_button],
            layout=widgets.Layout(justify_content="flex-end", margin="12px 0 0 0"),
        )
        super().__init__(
            css_class="taskops-confirm", width=520, body=widgets.VBox([self.text, buttons])
        )

    def ask(
        self, title: str, text: str, action: Callable[[], Any], *, confirm: str = "Confirm"
    ) -> None:
        """Show ``text`` (HTML) under ``title``; Confirm runs ``action``."""
        self.title = title
        self.text.value = text
        self.confirm_button.description = confirm
        self._action = action
        self.show()

    def confirm(self) -> None:
        action, self._action = self._action, None
        self.hide()
        if action is not None:
            action()
