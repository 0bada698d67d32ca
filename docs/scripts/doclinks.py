"""Links that work both on the repository's file view and on the built site.

The Markdown files outside ``docs/`` that the site shows (the README as its home page, the
measured results, the benchmark index, the changes) are copied into it under other names, and
the pages link to one another and to source files by repository-relative paths. At build time
each link is rewritten to the page that shows its target; a link to a file the site does not
show (a script, a source file) becomes its path in code type, so that the site never holds a
dead link and the repository view keeps working links.
"""
from __future__ import annotations

import posixpath
import re
from typing import Dict

#: repository path -> site path of the Markdown files outside docs/ that the site shows
COPIED: Dict[str, str] = {
    "README.md": "index.md",
    "bench/RESULTS.md": "results/measurements.md",
    "bench/README.md": "results/benchmarks.md",
    "CHANGELOG.md": "changelog.md",
}
SITE_TO_REPO = {v: k for k, v in COPIED.items()}

_LINK = re.compile(r"(?<!!)\[([^\]\n]+)\]\(([^)\s]+)\)")
_FENCE = re.compile(r"^(```|~~~)", re.M)


def repo_path_of(site_path: str) -> str:
    """The repository file a site page is made from."""
    return SITE_TO_REPO.get(site_path, posixpath.join("docs", site_path))


def site_path_of(repo_path: str) -> str | None:
    """The site page that shows a repository file, or None where the site does not show it."""
    if repo_path in COPIED:
        return COPIED[repo_path]
    if repo_path.startswith("docs/") and repo_path.endswith(".md") and not repo_path.startswith("docs/scripts/"):
        return repo_path[len("docs/"):]
    return None


def _rewrite_one(text: str, target: str, page_repo: str, page_site: str) -> str:
    if re.match(r"^[a-z][a-z0-9+.-]*:", target) or target.startswith("#"):
        return f"[{text}]({target})"          # an address or an anchor on the same page
    path, _, anchor = target.partition("#")
    repo_target = posixpath.normpath(posixpath.join(posixpath.dirname(page_repo), path))
    site = site_path_of(repo_target)
    if site is None:
        shown = repo_target + ("/" if path.endswith("/") else "")
        if text.strip("`").strip("/") in (shown.strip("/"), posixpath.basename(shown.strip("/"))):
            return f"`{shown}`"
        return f"{text} (`{shown}`)"
    rel = posixpath.relpath(site, posixpath.dirname(page_site) or ".")
    return f"[{text}]({rel}{'#' + anchor if anchor else ''})"


def rewrite(markdown: str, page_site: str) -> str:
    """``markdown`` of the site page ``page_site`` with every relative link pointed at the page
    that shows its target (links inside fenced code blocks are left alone)."""
    page_repo = repo_path_of(page_site)
    parts = _FENCE.split(markdown)
    out, inside = [], False
    # split keeps the fence markers: text, marker, text, marker, ...
    for i, part in enumerate(parts):
        if i % 2 == 1:
            out.append(part)
            inside = not inside
            continue
        if inside:
            out.append(part)
        else:
            out.append(_LINK.sub(lambda m: _rewrite_one(m.group(1), m.group(2), page_repo, page_site), part))
    return "".join(out)
