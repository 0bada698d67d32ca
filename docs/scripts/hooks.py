"""MkDocs hooks: repository-relative links rewritten for the site (see doclinks.py)."""
from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import doclinks  # noqa: E402


def on_page_markdown(markdown, page, config, files):  # noqa: ARG001 (the hook's signature)
    return doclinks.rewrite(markdown, page.file.src_uri)


_ROLE = __import__("re").compile(r":(?:class|func|meth|mod|data|attr|exc|obj):(?=<code>|<a )")


def on_page_content(html, page, config, files):  # noqa: ARG001
    """Docstrings cross-reference with Sphinx roles (``:class:`X```); the rendered page shows
    the name without the role."""
    return _ROLE.sub("", html)


_RST_LITERAL = __import__("re").compile(r"::(</p>)")
_TILDE = __import__("re").compile(r"<code>~")


def on_post_page(output, page, config):  # noqa: ARG001
    """reST habits of the docstrings that Markdown keeps literally: ``text::`` before a code
    block and ``:class:`~pkg.Name``` shortening marks."""
    return _TILDE.sub("<code>", _RST_LITERAL.sub(r":\1", output))
