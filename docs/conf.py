"""Sphinx configuration of the sklearn_robust documentation (``make docs``).

The Markdown pages are read by MyST, the API reference is generated at build time from the
numpydoc docstrings (autosummary stubs under ``api/generated/``, not committed). Nothing
here fetches from the network: no intersphinx, no remote images.
"""

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sklearn_robust._version import __version__  # noqa: E402

project = "sklearn_robust"
author = "the sklearn_robust developers"
copyright = "2026, the sklearn_robust developers"
version = ".".join(__version__.split(".")[:2])
release = __version__

extensions = [
    "myst_parser",
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.viewcode",
    "numpydoc",
]

source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
root_doc = "index"
templates_path = ["_templates"]
exclude_patterns = ["_build", "Thumbs.db", ".DS_Store"]

# MyST: anchors for headings so that links such as `experiments.md#r-separation` resolve,
# the same slugs GitHub makes for the pages.
myst_heading_anchors = 3

# API reference: one generated page per public object.
autosummary_generate = True
autosummary_imported_members = True
autodoc_default_options = {}
autodoc_typehints = "none"
autodoc_inherit_docstrings = False

# numpydoc renders the sections; the class pages list their own methods (templates), so
# numpydoc's member tables would repeat them and drag in skorch's inherited API.
numpydoc_show_class_members = False
numpydoc_show_inherited_class_members = False
numpydoc_class_members_toctree = False
numpydoc_attributes_as_param_list = True
numpydoc_xref_param_type = False

html_theme = "alabaster"
html_title = f"sklearn_robust {release}"
html_static_path = []
html_theme_options = {
    "description": "Adversarially robust deep learning as scikit-learn estimators",
    "fixed_sidebar": True,
}


def _skip_metadata_requests(app, what, name, obj, skip, options):
    """Leave out scikit-learn's generated ``set_*_request`` methods (metadata routing):
    they are scikit-learn's API, documented there, and their docstrings point into
    scikit-learn's own documentation."""
    if name.startswith("set_") and name.endswith("_request"):
        return True
    return None


def setup(app):
    app.connect("autodoc-skip-member", _skip_metadata_requests)
