"""Rich displays: where the notebook HTML of connections, tag tables and recordings lives.

The renderers are in :mod:`bifrost._html`, the lowest layer, not here: ``Connection``,
``TagTable`` and ``Recording`` define ``_repr_html_`` one-liners that call them, so the
tables appear in every front end (JupyterLab, VS Code, nbconvert) without ``%load_ext``
and without a lower layer ever importing :mod:`bifrost.jupyter` (the import-linter layers
contract forbids that, even inside functions). Registering formatters with IPython's
``for_type`` from ``load_ipython_extension`` was the alternative; it would leave objects
plain in notebooks that never load the extension.
"""

from __future__ import annotations

from bifrost._html import connection_html, recording_html, table_html, tags_html

__all__ = ["connection_html", "recording_html", "table_html", "tags_html"]
