"""No Stripe secret is committed: not in the template, the sample events, the deploy settings or the docs.

Placeholders such as `sk_test_...` or `whsec_...` are fine; anything shaped like a real key is not.
The local runtime's and the tests' own made-up keys (`sk_test_e2e`, ...) live in code, not in these files.
"""

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
# Stripe secret keys, restricted keys and webhook signing secrets: a prefix, then a long random tail.
SECRET_VALUE = re.compile(r"\b(?:sk|rk)_(?:live|test)_[A-Za-z0-9]{10,}|\bwhsec_[A-Za-z0-9]{10,}")
SCANNED = sorted(
    {
        ROOT / "template.yaml",
        ROOT / "samconfig.toml",
        ROOT / "README.md",
        *ROOT.glob("events/**/*.json"),
        *ROOT.glob("docs/**/*.md"),
    }
)


def test_the_pattern_tells_a_real_looking_key_from_a_placeholder() -> None:
    assert SECRET_VALUE.search("sk_live_51HqLyjWDarjtT1zdp7dcXNo1x")
    assert SECRET_VALUE.search('"whsec_3NMIq0uSqFVOKBrKN5Z0OWct"')
    assert SECRET_VALUE.search("rk_test_26PHem9AhJZvU623DfE1x4sd")
    assert not SECRET_VALUE.search('{"api_key": "sk_test_...", "webhook_signing_secret": "whsec_..."}')


@pytest.mark.parametrize("path", SCANNED, ids=[str(p.relative_to(ROOT)) for p in SCANNED])
def test_no_stripe_secret_is_committed(path: Path) -> None:
    found = SECRET_VALUE.findall(path.read_text())
    assert found == [], f"{path.relative_to(ROOT)} holds what looks like a Stripe secret: {found}"
