"""The report by e-mail (report/mail.py): settings, and a message as a real SMTP server receives it."""
from __future__ import annotations

import pytest

from conftest import parsed
from hmo.errors import ConfigurationError
from report import mail


def test_without_settings_nothing_is_mailed_and_half_settings_are_one_clear_error(monkeypatch):
    for name in ("HMO_SMTP_HOST", "HMO_REPORT_TO"):
        monkeypatch.delenv(name, raising=False)
    assert mail.configured() is None
    monkeypatch.setenv("HMO_SMTP_HOST", "smtp.example")
    with pytest.raises(ConfigurationError, match="HMO_REPORT_TO is unset"):
        mail.configured()
    monkeypatch.setenv("HMO_REPORT_TO", "ppt@example")
    monkeypatch.setenv("HMO_SMTP_PORT", "submission")
    with pytest.raises(ConfigurationError, match="not a port number"):
        mail.configured()


def test_the_report_reaches_every_address_with_each_pdf_attached(smtp, tmp_path):
    pdfs = []
    for language in ("es", "en"):
        pdf = tmp_path / f"report.{language}.pdf"
        pdf.write_bytes(b"%PDF-1.7 " + language.encode())
        pdfs.append(pdf)
    settings = mail.configured()
    assert settings is not None
    mail.send(settings, mail.message(settings, "2026-11", pdfs, [tmp_path / "report.es.html"]))

    [(sender, recipients, raw)] = smtp.received
    assert sender == "observatorio@hmo.example"
    assert recipients == ["ppt@cancilleria.example", "secretaria@crm.example"]
    message = parsed(raw)
    assert message["Subject"] == "Informe mensual a la PPT / Monthly report to the PPT — 2026-11"
    assert "noviembre de 2026" in message.get_body().get_content()
    attached = {part.get_filename(): part.get_content() for part in message.iter_attachments()}
    assert attached == {"report.es.pdf": b"%PDF-1.7 es", "report.en.pdf": b"%PDF-1.7 en"}


def test_a_server_that_is_not_there_is_one_clear_error(monkeypatch):
    monkeypatch.setenv("HMO_SMTP_HOST", "127.0.0.1")
    monkeypatch.setenv("HMO_SMTP_PORT", "1")
    monkeypatch.setenv("HMO_REPORT_TO", "ppt@example")
    settings = mail.configured()
    assert settings is not None
    with pytest.raises(mail.MailFailed, match="was not mailed to ppt@example through 127.0.0.1:1"):
        mail.send(settings, mail.message(settings, "2026-11", [], []))
