"""Sphinx configuration of the sklearn_robust documentation (``make docs``).

The Markdown pages are read by MyST, the API reference is generated at build time from the
numpydoc docstrings (autosummary stubs under ``api/generated/``, not committed), and the
scripts of ``examples/`` become a sphinx-gallery under ``auto_examples/`` (not committed),
the quick ones run during the build. Nothing here fetches from the network: no
intersphinx, no remote images.
"""

import ast
import os
import re
import shutil
import sys
from pathlib import Path

from sphinx.util import logging

logger = logging.getLogger(__name__)
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
    "sphinx_gallery.gen_gallery",
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


# The gallery: every public script of examples/ with its code; the ones below also run
# while the docs build, with their default options, and show their printed output and
# figures. Together about 2 minutes on 2 idle cores (score_vs_trades 75 s,
# plot_robustness 25 s, mnist_separation 10 s, separation_of_datasets 1 s; 4 minutes with
# the cores shared by three other jobs). The others train for longer (tabular_breast_cancer
# about 2 minutes, the rest 4 minutes to hours) and are shown, not run: their measured
# output is on the Examples and Experiments pages.
GALLERY_RUN = ["separation_of_datasets", "mnist_separation", "plot_robustness", "score_vs_trades"]
GALLERY_SRC = ROOT / "docs" / "_build" / "gallery_src"
GALLERY_OUT = ROOT / "docs" / "_build" / "gallery_out"
GALLERY_HEADER = """\
.. _gallery:

Gallery of examples
===================

Every script of ``examples/``, with its code. Each runs from a checkout as
``python examples/<script>.py`` (``--help`` lists its options, ``--smoke`` runs it in
seconds on tiny budgets). {run} run while ``make docs`` builds these pages,
with their default options, and show their printed output and figures with their code;
the others train for minutes to hours and are shown, not run: their commands, measured
output and wall times are on the :doc:`Examples </examples>` and
:doc:`Experiments </experiments>` pages.
"""


def _gallery_title(script):
    """The title of an example's docstring: its first line, underlined with ``=``."""
    doc = ast.get_docstring(ast.parse(script.read_text()), clean=False) or ""
    lines = doc.splitlines() + ["", ""]
    underlined = set(lines[1]) == {"="} and len(lines[1]) >= len(lines[0].strip()) > 0
    return lines[0].strip() if underlined else None


def _stage_gallery():
    """The directory sphinx-gallery reads: the scripts of ``examples/`` (links) and an
    rst header. ``examples/README.md`` is written for GitHub in Markdown, and
    sphinx-gallery would paste it into its rst index as the header, so the gallery reads
    this staged copy rather than ``examples/`` itself."""
    shutil.rmtree(GALLERY_SRC, ignore_errors=True)
    GALLERY_SRC.mkdir(parents=True)
    for script in sorted((ROOT / "examples").glob("[!_]*.py")):
        if _gallery_title(script):
            (GALLERY_SRC / script.name).symlink_to(script)
        else:
            logger.info("gallery: examples/%s left out, its docstring has no title "
                        "underlined with '='", script.name)
    names = [f"``{name}.py``" for name in GALLERY_RUN]
    run = " and ".join([", ".join(names[:-1]), names[-1]] if len(names) > 1 else names)
    (GALLERY_SRC / "GALLERY_HEADER.rst").write_text(GALLERY_HEADER.format(run=run))
    return GALLERY_SRC


def _script_argv(gallery_conf, script_vars):
    """The examples run with their defaults, except that ``plot_robustness.py`` writes its
    PNGs to a build folder (its default is docs/images, which the pages show as
    committed) for :func:`_png_scraper` to pick up."""
    if Path(script_vars["src_file"]).stem == "plot_robustness":
        out = GALLERY_OUT / "plot_robustness"
        shutil.rmtree(out, ignore_errors=True)
        return ["--out-dir", str(out)]
    return []


def _png_scraper(block, block_vars, gallery_conf):
    """Figures the example saved as PNG files (``plot_robustness.py`` closes its figures
    after saving them, so matplotlib's scraper finds none), in the order written."""
    from sphinx_gallery.scrapers import figure_rst

    out = GALLERY_OUT / Path(block_vars["src_file"]).stem
    pngs = sorted(out.glob("*.png"), key=lambda png: png.stat().st_mtime_ns)
    paths = []
    for png, image_path in zip(pngs, block_vars["image_path_iterator"], strict=False):
        shutil.move(png, image_path)
        paths.append(image_path)
    return figure_rst(paths, gallery_conf["src_dir"])


def _run_as_scripts():
    """Run each example with the ``__file__`` and ``__doc__`` that ``python script.py``
    gives it. sphinx-gallery runs the code without them (``__doc__`` empty, no
    ``__file__``), and every example reads its description from ``__doc__``, some their
    directory from ``__file__``. Wraps sphinx-gallery's ``execute_code_block`` (pinned
    at 0.22.1 in constraints.txt)."""
    from sphinx_gallery import gen_rst

    execute_code_block = gen_rst.execute_code_block
    if getattr(execute_code_block, "_as_script", False):
        return

    def as_script(compiler, block, example_globals, script_vars, gallery_conf, file_conf):
        if example_globals is not None and "__file__" not in example_globals:
            script = Path(script_vars["src_file"]).resolve()
            example_globals["__file__"] = str(script)
            example_globals["__doc__"] = ast.get_docstring(
                ast.parse(script.read_text()), clean=False
            )
        return execute_code_block(
            compiler, block, example_globals, script_vars, gallery_conf, file_conf
        )

    as_script._as_script = True
    gen_rst.execute_code_block = as_script


_run_as_scripts()
sphinx_gallery_conf = {
    "examples_dirs": str(_stage_gallery()),
    "gallery_dirs": "auto_examples",
    "filename_pattern": re.escape(os.sep) + "(" + "|".join(GALLERY_RUN) + r")\.py$",
    "within_subsection_order": "FileNameSortKey",
    "reset_argv": _script_argv,
    "image_scrapers": ("matplotlib", _png_scraper),
    "download_all_examples": False,
    # No notebooks: the examples are command-line programs (argparse would read the
    # kernel's arguments in Jupyter).
    "notebook_extensions": set(),
    # The timing table pulls scripts and styles from CDNs; the pages give each run's time.
    "write_computation_times": False,
}
# The gallery's callables make its configuration unpicklable, so Sphinx does not cache it
# between builds (it rereads the sources; examples whose code is unchanged do not rerun).
suppress_warnings = ["config.cache"]


def _skip_metadata_requests(app, what, name, obj, skip, options):
    """Leave out scikit-learn's generated ``set_*_request`` methods (metadata routing):
    they are scikit-learn's API, documented there, and their docstrings point into
    scikit-learn's own documentation."""
    if name.startswith("set_") and name.endswith("_request"):
        return True
    return None


def setup(app):
    app.connect("autodoc-skip-member", _skip_metadata_requests)
