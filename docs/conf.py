"""Sphinx configuration of the bifrost documentation (``make docs``).

The tutorials are rendered from the outputs stored in them: nbval in CI proves that they
run, so the docs build never executes a notebook (it stays fast and needs no PLC).
"""

from __future__ import annotations

import re
import shutil
import sys
from pathlib import Path
from typing import Any

DOCS = Path(__file__).resolve().parent
# The CLI-reference extension lives beside the API pages it serves.
sys.path.insert(0, str(DOCS / "api" / "_ext"))

project = "bifrost"
author = "the bifrost authors"
copyright = "the bifrost authors"


def _release() -> str:
    import tomllib

    import bifrost

    installed = str(bifrost.__version__)
    if installed != "0+unknown":
        return installed
    # A tree that was never `make setup`: every distribution has the same version.
    core = DOCS.parent / "packages" / "bifrost-core" / "pyproject.toml"
    return str(tomllib.loads(core.read_text())["project"]["version"])


release = _release()
version = ".".join(release.split(".")[:2])

extensions = [
    "myst_nb",
    "sphinx.ext.autodoc",
    "sphinx.ext.napoleon",
    "bifrost_cli_doc",
]

# Sources: Markdown and the notebooks. Sphinx reads only files under docs/, so the tutorials
# (the very files nbval checks) are copied into guides/tutorials/ when they changed, which
# keeps incremental builds incremental; a symlink would not do: MyST resolves the
# notebooks' links between each other through it, outside docs/.
exclude_patterns = [
    "_build",
    "api/_ext",
    "**/.ipynb_checkpoints",
    "gateway.example.yaml",
    "bifrost-gateway.service",
]
templates_path = ["_templates"]
html_static_path = ["_static"]

nb_execution_mode = "off"
# No notebook stores widget state (JupyterLab does not save it by default), so a widget
# view would be an empty box on a static page: show its text form instead; the guides show
# the widgets as screenshots.
nb_mime_priority_overrides = [
    ("html", "application/vnd.jupyter.widget-view+json", None),
    ("dirhtml", "application/vnd.jupyter.widget-view+json", None),
]
myst_enable_extensions = ["colon_fence", "deflist"]
# Headings get anchors so that pages can link `architecture.md#adding-a-protocol`.
myst_heading_anchors = 4

# Stored tracebacks are free text (bifrost's errors print hints), not always lexable.
suppress_warnings = ["misc.highlighting_failure"]

# The API text is the docstrings (numpy convention); signatures carry the annotations.
napoleon_google_docstring = False
napoleon_numpy_docstring = True
napoleon_use_rtype = False
autodoc_typehints = "signature"
autodoc_member_order = "bysource"
autodoc_default_options = {"members": True, "show-inheritance": True}
autodoc_preserve_defaults = True

html_theme = "furo"
html_title = f"bifrost {release}"
html_last_updated_fmt = None
html_show_sourcelink = False


def _copy_tutorials(app: Any) -> None:
    source = DOCS.parent / "tutorials"
    target = DOCS / "guides" / "tutorials"
    wanted = {path.name: path for path in source.glob("*.ipynb")}
    for stale in target.glob("*.ipynb"):
        if stale.name not in wanted:
            stale.unlink()
    for name, path in wanted.items():
        copy = target / name
        if not copy.exists() or copy.read_bytes() != path.read_bytes():
            shutil.copy2(path, copy)


# A numpydoc entry in Parameters, Attributes or Raises is `name`, `name : type` or
# `a, b : type`; a paragraph of prose after the last entry is not one, but napoleon would
# make each of its lines a parameter. It is rendered as the section's Notes instead.
_SECTIONS = {"Parameters", "Other Parameters", "Attributes", "Raises"}
_ENTRY = re.compile(r"^\*{0,2}\w+(\s*,\s*\*{0,2}\w+)*(\s*:.*)?$")


def _notes_after_entries(
    app: Any, what: str, name: str, obj: Any, options: Any, lines: list[str]
) -> None:
    section = None
    for index in range(len(lines)):
        line = lines[index]
        if index + 1 < len(lines) and re.fullmatch(r"-{3,}", lines[index + 1].strip()):
            section = line.strip()
            continue
        if re.fullmatch(r"-{3,}", line.strip()):
            continue
        starts_block = index > 0 and not lines[index - 1].strip()
        unindented = bool(line.strip()) and not line[:1].isspace()
        if section in _SECTIONS and starts_block and unindented and not _ENTRY.match(line):
            lines[index:index] = ["Notes", "-----"]
            return


def _reexported_data_docs(
    app: Any, what: str, name: str, obj: Any, options: Any, lines: list[str]
) -> None:
    # A constant re-exported by a package (bifrost.sim.LINE_RUNNING, defined in
    # bifrost.sim.process) has its docstring (the string under its assignment) in the
    # module that defines it; autodoc would show int's docstring instead.
    if what != "data":
        return
    from sphinx.pycode import ModuleAnalyzer, PycodeError

    package, _, attribute = name.rpartition(".")
    for module in sorted(m for m in sys.modules if m.startswith(f"{package}.")):
        try:
            docs = ModuleAnalyzer.for_module(module).find_attr_docs()
        except PycodeError:
            continue
        if ("", attribute) in docs and getattr(sys.modules[module], attribute, None) is obj:
            lines[:] = list(docs[("", attribute)])
            return


def _resolve_lazy_names() -> None:
    # The public modules load their names on first use (a module __getattr__); autodoc
    # looks for them in the module's namespace, so they are loaded here first.
    import importlib

    for name in ("bifrost", "aio", "analytics", "jupyter", "sim", "cloud", "testing"):
        module = importlib.import_module(name if name == "bifrost" else f"bifrost.{name}")
        for public in getattr(module, "__all__", ()):
            setattr(module, public, getattr(module, public))


_resolve_lazy_names()


def setup(app: Any) -> None:
    """Copy the tutorials in, and keep prose out of parameter lists."""
    app.connect("builder-inited", _copy_tutorials)
    # Before napoleon (priority 500) turns the sections into field lists.
    app.connect("autodoc-process-docstring", _notes_after_entries, priority=400)
    app.connect("autodoc-process-docstring", _reexported_data_docs)
