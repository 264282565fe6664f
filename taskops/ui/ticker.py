"""``Ticker``: a refresh timer that runs in the browser.

The browser, not the kernel, keeps the time: it asks Python to refresh only while the
ticker's element is on screen and the page is visible. So a hidden screen costs nothing,
and a closed page stops ticking, which lets the server cull its idle kernel (a timer in
the kernel would keep a closed page's kernel busy forever).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import anywidget
import traitlets

__all__ = ["Ticker"]

_ESM = """
function render({ model, el }) {
  let timer = null;
  const visible = () => !document.hidden && el.isConnected && el.getClientRects().length > 0;
  const tick = () => { if (visible()) model.send({ tick: Date.now() }); };
  el.classList.add("taskops-ticker");
  const arm = () => {
    clearInterval(timer);
    const seconds = model.get("interval");
    el.dataset.interval = String(seconds);  // what the browser keeps time by, for a look
    if (seconds > 0) timer = setInterval(tick, seconds * 1000);
  };
  model.on("change:interval", arm);
  arm();
  return () => clearInterval(timer);
}
export default { render };
"""


class Ticker(anywidget.AnyWidget):
    """Calls its callbacks every ``interval`` seconds while it is shown in a visible page.
    It draws nothing; put it anywhere in the screen it refreshes."""

    _esm = traitlets.Unicode(_ESM).tag(sync=True)
    interval = traitlets.Float(5.0, help="seconds between ticks; 0 stops").tag(sync=True)

    def __init__(self, interval: float = 5.0) -> None:
        super().__init__(interval=interval)
        self._callbacks: list[Callable[[], Any]] = []
        self.on_msg(self._on_message)

    def on_tick(self, callback: Callable[[], Any]) -> None:
        self._callbacks.append(callback)

    def tick(self) -> None:
        """What a tick from the browser does: run every callback."""
        for callback in self._callbacks:
            callback()

    def _on_message(self, _widget: Any, content: Any, _buffers: Any) -> None:
        if isinstance(content, dict) and "tick" in content:
            self.tick()
