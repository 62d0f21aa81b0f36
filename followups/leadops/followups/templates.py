"""Message templates, rendered in Jinja2's immutable sandbox with StrictUndefined.

The sandbox refuses attribute access that reaches Python internals (`__class__`,
`__globals__`, `mro`, `str.format` tricks: Jinja2 >= 3.1.6 closes the known escapes) and the
immutable variant also refuses mutating lists and dicts passed in. StrictUndefined makes a
missing variable an error instead of an empty string. Rendering is all or nothing: the text
is only returned when the whole template rendered, so no half-rendered message is ever sent.
"""

from __future__ import annotations

from collections.abc import Mapping

import jinja2
from jinja2.sandbox import ImmutableSandboxedEnvironment

# Keeps a template from building a huge string in the worker (e.g. `{{ "x" * 10**9 }}`).
MAX_MESSAGE_CHARS = 20_000


class TemplateRenderError(Exception):
    """The template did not render; the message says why without quoting lead data."""


_ENV = ImmutableSandboxedEnvironment(undefined=jinja2.StrictUndefined, autoescape=False)


def compile_template(source: str) -> jinja2.Template:
    try:
        return _ENV.from_string(source)
    except jinja2.TemplateSyntaxError as exc:
        raise TemplateRenderError(f"template syntax error at line {exc.lineno}") from None


def render(template: jinja2.Template, context: Mapping[str, object]) -> str:
    """The whole rendered text, or TemplateRenderError (undefined name, sandbox refusal, ...)."""
    try:
        text = template.render(**context)
    except jinja2.UndefinedError as exc:
        raise TemplateRenderError(f"undefined in template: {exc.message}") from None
    except jinja2.exceptions.SecurityError:
        raise TemplateRenderError("the template tried an operation the sandbox refuses") from None
    except Exception as exc:  # any other failure inside the template (a filter, a type error)
        raise TemplateRenderError(f"template failed: {type(exc).__name__}") from None
    if len(text) > MAX_MESSAGE_CHARS:
        raise TemplateRenderError(f"rendered message over {MAX_MESSAGE_CHARS} characters")
    return text
