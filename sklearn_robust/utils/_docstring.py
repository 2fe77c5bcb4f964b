"""Parameter documentation written once and substituted into docstrings.

A docstring names a shared block as ``%(name)s``; :class:`Substitution` fills it in when
the class or function is defined, so a parameter shared by eight classifiers is
documented in one place and reads the same in each.
"""

import textwrap

__all__ = ["Substitution"]


class Substitution:
    """Decorator filling ``%(key)s`` placeholders of a docstring with shared text.

    Each value is a block written flush-left; it is indented to the placeholder's column.

    Parameters
    ----------
    **blocks : str
        The text for each placeholder.

    Examples
    --------
    >>> import inspect
    >>> shared = '''eps : float
    ...     Radius of the ball.'''
    >>> @Substitution(eps=shared)
    ... def f(eps):
    ...     '''Do it.
    ...
    ...     Parameters
    ...     ----------
    ...     %(eps)s
    ...     '''
    >>> print(inspect.cleandoc(f.__doc__).splitlines()[-1])
        Radius of the ball.
    """

    def __init__(self, **blocks):
        # dedent, not inspect.cleandoc: a one-parameter block has all its continuation
        # lines indented, and cleandoc would strip them flush-left.
        self.blocks = {key: textwrap.dedent(text).strip("\n") for key, text in blocks.items()}

    def __call__(self, obj):
        doc = obj.__doc__
        if doc:
            obj.__doc__ = self.fill(doc)
        return obj

    def fill(self, doc):
        """``doc`` with every known placeholder replaced, indented as the placeholder."""
        lines = []
        for line in doc.splitlines():
            stripped = line.strip()
            key = stripped[2:-2] if stripped.startswith("%(") and stripped.endswith(")s") else None
            if key in self.blocks:
                indent = line[: len(line) - len(line.lstrip())]
                lines.extend(indent + part if part else "" for part in
                             self.blocks[key].splitlines())
            else:
                for k, text in self.blocks.items():
                    line = line.replace(f"%({k})s", text)
                lines.append(line)
        return "\n".join(lines) + ("\n" if doc.endswith("\n") else "")
