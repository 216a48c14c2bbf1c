"""faxflow: FAX order sheets and handwritten ledgers into checked data.

The repository root is the ``faxflow`` package (see pyproject.toml). Stages:
``ingest`` (files -> pages, pipeline, watcher, batch), ``ocr`` (clean, align,
crop, engines), ``templates`` (the domain: templates, typed values, parsing,
rules), ``export`` (SQLite store, CSV hand-off).
"""

__version__ = "0.1.0"
