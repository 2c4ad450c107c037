"""MkDocs hook: a page includes a Markdown file of the repository (RESULTS.md) where it says ``<!-- include FILE -->``.

The file is read at every build, so the site never holds a stale copy. Its first line, when it is
a level-1 heading, is left out (the page has its own), and its relative links, written from the
repository's root, are rewritten from the page's folder: a figure under docs/ then resolves,
and a link to anything the site does not hold fails ``mkdocs build --strict``.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

INCLUDE = re.compile(r"^<!-- include (?P<path>\S+) -->$", re.M)
LINK = re.compile(r"(?P<open>!?\[[^\]]*\]\()(?P<target>[^)\s#]+)(?P<close>[^)]*\))")


def _relative_link(target, root, page_dir):
    if re.match(r"^[a-z][a-z0-9+.-]*:", target) or target.startswith("/"):
        return target  # a URL or an absolute path: as written
    return Path(os.path.relpath(root / target, page_dir)).as_posix()


def _included(path, root, page_dir):
    text = (root / path).read_text(encoding="utf-8")
    first, _, rest = text.partition("\n")
    if first.startswith("# "):
        text = rest
    return LINK.sub(lambda m: m["open"] + _relative_link(m["target"], root, page_dir) + m["close"], text)


def on_page_markdown(markdown, page, config, **kwargs):
    docs_dir = Path(config["docs_dir"])
    root = Path(config["config_file_path"]).resolve().parent
    page_dir = (docs_dir / page.file.src_path).resolve().parent
    return INCLUDE.sub(lambda m: _included(m["path"], root, page_dir), markdown)
