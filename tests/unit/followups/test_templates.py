"""Templates render whole or not at all, and the sandbox refuses known escapes."""

from __future__ import annotations

import pytest

from leadops.followups import templates

# Published Jinja2 sandbox escapes and probes (SSTI payloads), each must be refused.
ESCAPES = [
    "{{ ''.__class__.__mro__[1].__subclasses__() }}",
    "{{ name.__class__.__base__.__subclasses__() }}",
    "{{ cycler.__init__.__globals__.os.popen('id').read() }}",
    "{{ lipsum.__globals__['os'].popen('id').read() }}",
    "{{ self._TemplateReference__context.cycler.__init__.__globals__.os }}",
    "{{ config.__class__.__init__.__globals__['os'] }}",
    "{{ request.application.__globals__.__builtins__ }}",
    "{{ '{0.__class__}'.format(name) }}",  # str.format reaching attributes (CVE-2016-10745)
    "{{ '{x.__class__.__mro__}'.format_map({'x': name}) }}",
    "{{ ''|attr('__class__') }}",
    "{% set f = '{0.__class__.__mro__}'.format %}{{ f(name) }}",  # CVE-2024-56326
    "{{ ('{0.__globals__}' | attr('format'))(lipsum) }}",  # CVE-2025-27516 (|attr to format)
    "{% set x = items.append(1) %}{{ items }}",  # the immutable sandbox: no mutation
    "{{ items.pop() }}",
]


@pytest.mark.parametrize("source", ESCAPES)
def test_sandbox_escapes_are_refused(source: str) -> None:
    with pytest.raises(templates.TemplateRenderError):
        templates.render(templates.compile_template(source), {"name": "Ada", "items": [1, 2]})


def test_undefined_names_fail_instead_of_rendering_blank() -> None:
    template = templates.compile_template("Hi {{ name }}, your code is {{ code }}")
    with pytest.raises(templates.TemplateRenderError, match="undefined"):
        templates.render(template, {"name": "Ada"})
    assert templates.render(template, {"name": "Ada", "code": 7}) == "Hi Ada, your code is 7"


def test_a_failure_late_in_the_template_returns_nothing() -> None:
    template = templates.compile_template("Hello {{ name }}! {{ 1 // zero }}")
    with pytest.raises(templates.TemplateRenderError, match="ZeroDivisionError"):
        templates.render(template, {"name": "Ada", "zero": 0})


def test_huge_output_is_refused() -> None:
    template = templates.compile_template("{% for i in range(30000) %}x{% endfor %}")
    with pytest.raises(templates.TemplateRenderError, match="over"):
        templates.render(template, {})


def test_syntax_error_names_the_line() -> None:
    with pytest.raises(templates.TemplateRenderError, match="line 2"):
        templates.compile_template("ok\n{{ broken ")
