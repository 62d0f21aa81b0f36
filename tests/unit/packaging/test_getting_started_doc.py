"""docs/getting-started.md: every section with commands is run by the guide test or says why
not, its LeadModel is the example file, and that LeadModel is a valid spec."""

from __future__ import annotations

import re

import yaml

from leadops.operator.spec import LeadModelSpec
from tests.integration.guide import GETTING_STARTED, headings_with_commands
from tests.integration.test_getting_started import NOT_RUN_HERE, RUN_IN_ORDER

EXAMPLE = GETTING_STARTED.parents[1] / "examples" / "getting-started" / "leadmodel.yaml"


def test_every_section_with_commands_is_run_or_says_why() -> None:
    sections = headings_with_commands(GETTING_STARTED)
    assert sections == [s for s in sections if s in RUN_IN_ORDER or s in NOT_RUN_HERE]
    assert [s for s in sections if s in RUN_IN_ORDER] == list(RUN_IN_ORDER)
    assert set(sections) == set(RUN_IN_ORDER) | set(NOT_RUN_HERE)


def test_the_guides_leadmodel_is_the_example_file_and_valid() -> None:
    text = GETTING_STARTED.read_text()
    (shown,) = re.findall(r"```yaml\n(.*?)```", text, flags=re.S)
    example = yaml.safe_load(EXAMPLE.read_text())
    assert yaml.safe_load(shown) == example
    spec = LeadModelSpec.model_validate(example["spec"])
    assert spec.semantic_errors() == []
    assert spec.training.bootstrap is not None
    assert f"kubectl apply -f examples/getting-started/{EXAMPLE.name}" in text


def test_the_guide_ends_with_an_uninstall_that_removes_the_crd_and_namespaces() -> None:
    sections = headings_with_commands(GETTING_STARTED)
    assert sections[-1] == "Uninstall"
    text = GETTING_STARTED.read_text()
    assert "kubectl delete crd leadmodels.leadops.io" in text
    assert text.index("kubectl delete leadmodel") < text.index("helm uninstall")
