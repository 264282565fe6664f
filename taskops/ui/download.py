"""``DownloadButton``: a button that saves content made by Python as a file in the browser.

On click the browser asks Python for the content, which is made then (never stale, and
not sent with the page), and saves it as a Blob under the file name Python gives.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import anywidget
import traitlets

__all__ = ["DownloadButton"]

_ESM = """
function render({ model, el }) {
  const button = document.createElement("button");
  button.className = "jupyter-button widget-button";
  const label = () => { button.textContent = model.get("description"); };
  label();
  model.on("change:description", label);
  button.addEventListener("click", () => model.send({ download: true }));
  model.on("msg:custom", (msg, buffers) => {
    if (!msg || msg.kind !== "file") return;
    const blob = new Blob(buffers.length ? [buffers[0].buffer] : [], { type: msg.mime });
    const link = document.createElement("a");
    link.href = URL.createObjectURL(blob);
    link.download = msg.filename;
    document.body.appendChild(link);
    link.click();
    link.remove();
    setTimeout(() => URL.revokeObjectURL(link.href), 10000);
  });
  el.appendChild(button);
}
export default { render };
"""


class DownloadButton(anywidget.AnyWidget):
    """A button labelled ``description``; a click calls ``content()``, which returns
    ``(filename, data)``, and the browser saves ``data`` (text is saved as UTF-8) under
    that name. An error raised by ``content`` goes to ``on_error`` (the screen's alerts)
    and nothing is saved."""

    _esm = traitlets.Unicode(_ESM).tag(sync=True)
    description = traitlets.Unicode("Download").tag(sync=True)

    def __init__(
        self,
        description: str,
        content: Callable[[], tuple[str, str | bytes]],
        *,
        mime: str = "application/json",
        on_error: Callable[[Exception], Any] | None = None,
    ) -> None:
        super().__init__(description=description)
        self.content = content
        self.mime = mime
        self.on_error = on_error
        self.on_msg(self._on_message)

    def prepare(self) -> tuple[str, bytes]:
        """``(filename, bytes)`` as a click would save them."""
        filename, data = self.content()
        return filename, data.encode("utf-8") if isinstance(data, str) else data

    def click(self) -> None:
        """What a click in the browser does: make the file and send it to be saved."""
        try:
            filename, data = self.prepare()
        except Exception as exc:
            if self.on_error is None:
                raise
            self.on_error(exc)
            return
        self.send({"kind": "file", "filename": filename, "mime": self.mime}, [data])

    def _on_message(self, _widget: Any, content: Any, _buffers: Any) -> None:
        if isinstance(content, dict) and content.get("download"):
            self.click()
