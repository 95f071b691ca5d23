"""Stand-in that is never shipped: ``bifrost/__init__.py`` belongs to bifrost-core.

maturin builds a package only from a folder holding an ``__init__.py`` (it does not
support namespace packages, PyO3/maturin#811). This file makes ``src/bifrost`` that folder;
``pyproject.toml`` keeps it out of the wheel, which therefore adds ``bifrost/_core`` and
``bifrost/analytics/`` to the ``bifrost`` package that bifrost-core installs.
"""
