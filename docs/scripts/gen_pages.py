"""Pages the documentation site generates at build time (run by mkdocs-gen-files):
the copied Markdown files outside docs/, the CLI, configuration and op references, and the
API reference pages."""
from __future__ import annotations

import sys
from pathlib import Path

import mkdocs_gen_files

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import doclinks  # noqa: E402
import docref  # noqa: E402

#: the API reference: page -> (title, modules documented from their docstrings; "module|a,b": only a and b;
#: "package|": the package's overview only, where its names are documented from their modules)
API = {
    "graph": ("Graphs and propagation", ["llmhni_ext.graph"]),
    "sampling": ("Negative sampling", ["llmhni_ext.sampling"]),
    "contrastive": ("Edge-dropped views and InfoNCE", ["llmhni_ext.contrastive"]),
    "data": ("Data sets", ["llmhni_ext.data|", "llmhni_ext.data.dataset", "llmhni_ext.data.loaders",
                           "llmhni_ext.data.noise", "llmhni_ext.data.synthetic"]),
    "signals": ("Language-model signals", ["llmhni_ext.signals|", "llmhni_ext.signals.stage",
                                           "llmhni_ext.signals.config"]),
    "integrations": ("PyG and RecBole", ["llmhni_ext.integrations.pyg", "llmhni_ext.integrations.recbole"]),
    "training": ("Training as a library", ["llmhni_ext.pipeline",
                                           # the registry only: its classes are documented once, from base
                                           "llmhni_ext.methods|MODULES,REGISTRY,METHODS,NEEDS_SIGNALS,get,relevant_method_keys",
                                           "llmhni_ext.methods.base", "llmhni_ext.methods.settings"]),
}

for repo_path, site_path in doclinks.COPIED.items():
    with mkdocs_gen_files.open(site_path, "w") as f:
        f.write((docref.REPO / repo_path).read_text())
    mkdocs_gen_files.set_edit_path(site_path, Path("..") / repo_path)

for site_path, make in (("reference/cli.md", docref.cli_markdown),
                        ("reference/configuration.md", docref.config_markdown),
                        ("reference/api/ops.md", docref.ops_markdown)):
    with mkdocs_gen_files.open(site_path, "w") as f:
        f.write(make())

for page, (title, modules) in API.items():
    with mkdocs_gen_files.open(f"reference/api/{page}.md", "w") as f:
        f.write(f"# {title}\n\n")
        for entry in modules:
            mod, bar, members = entry.partition("|")
            f.write(f"::: {mod}\n")
            if bar and not members:             # a package that re-exports: its overview only
                f.write("    options:\n      members: false\n")
            elif members:
                f.write("    options:\n      members:\n" + "".join(f"        - {m}\n" for m in members.split(",")))
            f.write("\n")
