"""The documentation is true to the code: its generated references cover every command, setting
and op; every Python block in the docs runs (or, where it needs a service or RecBole, at least
compiles and imports only names that exist); every `llmhni ...` command in them parses; and the
built site renders in headless Chromium.

The browser test needs a built site (``mkdocs build --strict``, which ``.ci/run`` does) and
Chromium with its driver; it skips without them unless ``LLMHNI_DOCS_REQUIRE=1``.
"""
import ast
import dataclasses
import functools
import glob
import http.server
import importlib
import importlib.util
import os
import re
import shlex
import shutil
import sys
import threading

import pytest
import torch

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "docs", "scripts"))

import doclinks as links  # noqa: E402
import docref as reference  # noqa: E402

REQUIRE = os.environ.get("LLMHNI_DOCS_REQUIRE") == "1"
PAGES = sorted(glob.glob(os.path.join(ROOT, "docs", "**", "*.md"), recursive=True)) + [
    os.path.join(ROOT, p) for p in links.COPIED]


def _blocks(path, lang):
    text = open(path, encoding="utf-8").read()
    return [m.group(1) for m in re.finditer(rf"^ *```{lang}\n(.*?)^ *```", text, re.S | re.M)]


def _rel(path):
    return os.path.relpath(path, ROOT)


# ------------------------------------------------------------------ generated references

def test_cli_reference_lists_every_command_and_option():
    from llmhni_ext.cli import build_parser
    parser = build_parser()
    text = reference.cli_markdown(parser)
    subs = reference._subcommands(parser)
    assert {"train", "compare", "signals", "identify", "evaluate", "info"} <= set(subs)
    for name, sub in subs.items():
        assert f"## llmhni {name}" in text
        for action in sub._actions:
            for opt in action.option_strings:
                if opt not in ("-h", "--help") and action.help != "==SUPPRESS==":
                    assert f"`{opt}" in text or f", {opt}" in text, (name, opt)


def test_configuration_reference_lists_every_setting_with_a_description():
    from llmhni_ext import config, methods
    text = reference.config_markdown()
    cfg = config.RunConfig()
    undocumented = []
    for section in ("data", "model", "train", "method", "signals"):
        for f in dataclasses.fields(getattr(cfg, section)):
            if section == "method" and f.name == "name":
                continue
            row = next((line for line in text.splitlines() if line.startswith(f"| `{section}.{f.name}` |")), None)
            assert row is not None, f"{section}.{f.name} missing from the configuration reference"
            if row.rstrip().endswith("|  |"):
                undocumented.append(f"{section}.{f.name}")
    assert not undocumented, f"settings without a description next to their declaration: {undocumented}"
    for name in methods.REGISTRY:
        assert f"| `{name}` |" in text
    for preset in glob.glob(os.path.join(ROOT, "llmhni_ext", "configs", "*.yaml")):
        assert f"### {os.path.basename(preset)[:-5]}" in text


def test_ops_reference_holds_every_registered_schema():
    flat = "".join(reference.ops_markdown().split())        # the page wraps one argument a line
    for name, schema in reference.op_schemas():
        assert "".join(schema.split()).replace(")->", ",)->") in flat or "".join(schema.split()) in flat, name
    assert len(reference.op_schemas()) >= 13


# ------------------------------------------------------------------ the pages' code

def _python_blocks():
    for page in PAGES:
        for i, code in enumerate(_blocks(page, "python")):
            yield pytest.param(page, code, id=f"{_rel(page)}#{i}")


@pytest.mark.parametrize("page, code", list(_python_blocks()))
def test_python_blocks_import_real_names_and_run(page, code):
    tree = ast.parse(code, filename=_rel(page))
    imported = [n for n in ast.walk(tree) if isinstance(n, (ast.Import, ast.ImportFrom))]
    needs_recbole = "recbole" in code   # RecBole itself or llmhni's RecBole integration
    have_recbole = importlib.util.find_spec("recbole") is not None
    for node in imported:
        if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "llmhni_ext":
            if node.module.endswith("recbole") and not have_recbole:
                continue
            mod = importlib.import_module(node.module)
            for alias in node.names:
                assert hasattr(mod, alias.name), f"{_rel(page)}: {node.module} has no {alias.name}"
    if needs_recbole or "README.md" in page:   # RecBole needs data it downloads; the README's block: test_readme
        return
    if "torch_geometric" in code:
        pytest.importorskip("torch_geometric")
    if "ml-100k" in code:
        from llmhni_ext.data import resolve_data_root
        if not (resolve_data_root() / "ml-100k" / "u.data").is_file():
            pytest.skip("needs MovieLens-100K under the data root (it is not downloaded by tests)")
    torch.manual_seed(0)
    exec(compile(code, _rel(page), "exec"), {"__name__": "__docs__"})


def _commands():
    for page in PAGES:
        for lang in ("bash", "text", ""):
            for block in _blocks(page, lang):
                for line in block.replace("\\\n", " ").splitlines():
                    for part in re.split(r"&&|;", line.split("#", 1)[0]):
                        part = part.strip()
                        if part.startswith("llmhni ") and not re.search(r"[<>]|\.\.\.|\[", part):
                            yield pytest.param(part, id=f"{_rel(page)}: {part[:60]}")


@pytest.mark.parametrize("command", list(_commands()))
def test_every_llmhni_command_in_the_docs_parses(command):
    from llmhni_ext.cli import build_parser
    argv = shlex.split(command)[1:]
    try:
        build_parser().parse_args(argv)
    except SystemExit as e:
        if e.code not in (0, None):
            pytest.fail(f"`{command}` does not parse (exit {e.code})")


def test_every_page_is_in_the_site_navigation():
    nav = open(os.path.join(ROOT, "mkdocs.yml"), encoding="utf-8").read()
    for page in glob.glob(os.path.join(ROOT, "docs", "**", "*.md"), recursive=True):
        assert os.path.relpath(page, os.path.join(ROOT, "docs")) in nav, f"{_rel(page)} is not in mkdocs.yml's nav"


def test_links_point_at_the_pages_that_show_them():
    md = "See [results](../../bench/RESULTS.md#3-does-llmhni-work), [code](../../llmhni_ext/sampling.py) and [cli](../cli.md).\n```\n[x](y.md)\n```\n"
    out = links.rewrite(md, "guides/judge.md")
    assert "[results](../results/measurements.md#3-does-llmhni-work)" in out
    assert "code (`llmhni_ext/sampling.py`)" in out
    assert "[cli](../cli.md)" in out and "[x](y.md)" in out
    assert "[the CLI](docs/cli.md)" not in links.rewrite("[the CLI](docs/cli.md)", "index.md")
    assert "[the CLI](cli.md)" in links.rewrite("[the CLI](docs/cli.md)", "index.md")


# ------------------------------------------------------------------ the built site in a browser

def _site():
    site = os.environ.get("LLMHNI_DOCS_SITE", os.path.join(ROOT, "site"))
    if not os.path.isfile(os.path.join(site, "index.html")):
        if REQUIRE:
            pytest.fail(f"no built site at {site}: run `mkdocs build --strict`")
        pytest.skip("the documentation site is not built (mkdocs build --strict)")
    return site


def _browser():
    chromium = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
    driver = shutil.which("chromedriver")
    try:
        from selenium import webdriver
    except ImportError:
        webdriver = None
    if not (chromium and driver and webdriver):
        if REQUIRE:
            pytest.fail("headless Chromium needs chromium, chromedriver and selenium (pip install '.[docs]')")
        pytest.skip("no Chromium, chromedriver or selenium here")
    from selenium.webdriver.chrome.service import Service
    opts = webdriver.ChromeOptions()
    opts.binary_location = chromium
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--disable-quic"):
        opts.add_argument(flag)
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    return webdriver.Chrome(service=Service(driver), options=opts)


@pytest.fixture(scope="module")
def served_site():
    site = _site()
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=site)
    handler.log_message = lambda *a, **k: None
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()


@pytest.mark.parametrize("path, title, must_show", [
    ("/", "llmhni", "Quick start"),
    ("/reference/api/sampling/", "Negative sampling", "NegativeSampler"),
    ("/reference/configuration/", "Configuration", "signals.judge"),
])
def test_the_built_site_renders_in_headless_chromium(served_site, path, title, must_show):
    from selenium.webdriver.common.by import By
    browser = _browser()
    try:
        browser.get(served_site + path)
        browser.implicitly_wait(5)
        assert title in browser.title, browser.title
        nav = browser.find_elements(By.CSS_SELECTOR, "nav.md-nav")
        assert nav and "Getting started" in browser.page_source
        assert must_show in browser.find_element(By.CSS_SELECTOR, "article").text
        errors = [e for e in browser.get_log("browser") if e["level"] == "SEVERE"]
        assert not errors, errors
    finally:
        browser.quit()
