"""``LogView``: a job's output as it grows, in a scrolling box that can follow its end."""

from __future__ import annotations

import anywidget
import traitlets

__all__ = ["LogView"]

_ESM = """
function render({ model, el }) {
  const pre = document.createElement("pre");
  pre.className = "taskops-log " + model.get("css_class");
  pre.style.cssText = "max-height:" + model.get("height") + "px; min-height:80px; overflow:auto;"
    + "background:#1e1e1e; color:#e0e0e0; padding:8px; margin:0; white-space:pre-wrap;"
    + "word-break:break-all; font-size:12px; line-height:1.4";
  const draw = () => {
    const top = pre.scrollTop;
    pre.textContent = model.get("text") || model.get("placeholder");
    if (model.get("autoscroll")) pre.scrollTop = pre.scrollHeight;
    else pre.scrollTop = top;
  };
  model.on("change:text", draw);
  model.on("change:placeholder", draw);
  model.on("change:autoscroll", draw);
  draw();
  el.appendChild(pre);
}
export default { render };
"""


class LogView(anywidget.AnyWidget):
    """Text in a dark, scrolling box. While ``autoscroll`` is on, every change of ``text``
    scrolls to its end; while it is off, the reader's position is kept."""

    _esm = traitlets.Unicode(_ESM).tag(sync=True)
    text = traitlets.Unicode("").tag(sync=True)
    placeholder = traitlets.Unicode("(no output yet)").tag(sync=True)
    autoscroll = traitlets.Bool(True).tag(sync=True)
    height = traitlets.Int(360).tag(sync=True)
    css_class = traitlets.Unicode("").tag(sync=True)
