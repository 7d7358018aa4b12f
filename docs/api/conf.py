"""Sphinx configuration of the vegviz API reference (``make docs`` -> docs/api/_build/html)."""
import vegviz

project = "vegviz"
release = version = vegviz.__version__
extensions = ["sphinx.ext.autodoc", "sphinx.ext.autosummary", "sphinx.ext.napoleon", "sphinx.ext.viewcode"]
autosummary_generate = True
autosummary_imported_members = False
autodoc_default_options = {"members": True, "show-inheritance": True}
autodoc_member_order = "bysource"
autodoc_typehints = "description"
# heavy or optional imports are real: the reference is built from the installed package
nitpicky = False
html_theme = "alabaster"
html_title = f"vegviz {release} API reference"
templates_path = ["_templates"]
exclude_patterns = ["_build"]
suppress_warnings = ["autosummary.import_cycle"]
