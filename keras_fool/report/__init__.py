"""Presentation: figures (PNG + byte-stable SVG), tables (CSV, Markdown, JSON), the papers' numbers with
their sources, and method titles and styles. Experiments, the audit and the human study compute;
this package renders. It imports nothing above :mod:`keras_fool.evaluation`.
"""
