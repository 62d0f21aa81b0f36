"""Reading an Inbound Parse post (pure): where reply tokens are looked for, in which order,
opt-out words, the multipart fields kept, and basic auth in constant time."""

from __future__ import annotations

import base64
import json

from leadops.followups import inbound_email

DOMAIN = "reply.example.test"


def test_inbound_module_reads_tokens_in_trust_order() -> None:
    """Pure: envelope, To/Cc, then In-Reply-To/References; opt-out words; basic auth."""
    a, b = "a" * 32, "b" * 32
    fields = {
        "envelope": json.dumps({"to": [f"reply+{a}@{DOMAIN.upper()}"], "from": "x@y.z"}),
        "headers": f"In-Reply-To: <fu.{b}@{DOMAIN}>\nSubject: RE: AW: stop\n",
        "from": "X <x@y.z>",
        "subject": "RE: AW: stop",
        "text": "\n> quoted\n",
    }
    mail = inbound_email.read(fields, DOMAIN)
    assert (mail.tokens, mail.sender, mail.opt_out) == ((a, b), "x@y.z", True)
    ok = "Basic " + base64.b64encode(b"u:p").decode()
    assert inbound_email.authorized(ok, [b"v:w", b"u:p"])
    assert not inbound_email.authorized(ok, [b"u:q"])
    assert not inbound_email.authorized("Basic !!!", [b"u:p"])
    assert not inbound_email.authorized("Bearer x", [b"u:p"])


def test_multipart_fields_are_read_and_file_parts_skipped() -> None:
    body = (
        b'--B\r\nContent-Disposition: form-data; name="text"\r\n\r\nOui, merci \xe9t\xe9\r\n'
        b'--B\r\nContent-Disposition: form-data; name="charsets"\r\n\r\n'
        b'{"text": "iso-8859-1"}\r\n'
        b'--B\r\nContent-Disposition: form-data; name="attachment1"; filename="a.txt"\r\n'
        b"Content-Type: text/plain\r\n\r\nSTOP\r\n"
        b'--B\r\nContent-Disposition: form-data; name="other"\r\n\r\nignored\r\n'
        b"--B--\r\n"
    )
    fields = inbound_email.parse_form(body, "multipart/form-data; boundary=B")
    assert fields["text"] == "Oui, merci \u00e9t\u00e9"
    assert "attachment1" not in fields
    assert "other" not in fields


def test_opt_out_is_the_first_own_line_or_the_subject() -> None:
    def opt_out(subject: str, text: str) -> bool:
        return inbound_email.read({"subject": subject, "text": text}, DOMAIN).opt_out

    assert opt_out("Re: Hello", "  Stop!\n\n> Dear Ann")
    assert opt_out("Unsubscribe", "")
    assert not opt_out("Re: Hello", "Please don't stop writing\n> STOP")
    assert not opt_out("Re: Hello", "> STOP\nok")
