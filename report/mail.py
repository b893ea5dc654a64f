"""The monthly report by e-mail to the PPT, its PDFs attached, when SMTP settings are given.

Settings (environment variables; nothing is sent without the first two):

- HMO_SMTP_HOST: the mail server; HMO_SMTP_PORT (default 587, or 465 with HMO_SMTP_SSL=1);
- HMO_REPORT_TO: the PPT's addresses, comma-separated;
- HMO_SMTP_FROM: the sender (default hmo@<host name>);
- HMO_SMTP_USER and HMO_SMTP_PASSWORD: to sign in, over STARTTLS (HMO_SMTP_STARTTLS=0 only for a server on
  this machine that offers none) or SSL.

Python's own smtplib and email packages write and send the message: one
message a report, both languages' HTML in the body as plain text pointers and
each PDF attached.
"""
from __future__ import annotations

import os
import smtplib
import socket
import ssl
from dataclasses import dataclass
from email.message import EmailMessage
from pathlib import Path

from hmo.errors import ConfigurationError, HmoError
from report.texts import month_name

SUBJECT = "Informe mensual a la PPT / Monthly report to the PPT — {period}"


class MailFailed(HmoError):
    """The mail server refused the report or could not be reached."""


@dataclass(frozen=True)
class MailSettings:
    host: str
    port: int
    recipients: list[str]
    sender: str
    user: str | None
    password: str | None
    use_ssl: bool
    starttls: bool


def configured() -> MailSettings | None:
    """The SMTP settings, or None when the report is not to be mailed (no host or no recipient)."""
    host = os.environ.get("HMO_SMTP_HOST", "").strip()
    recipients = [a.strip() for a in os.environ.get("HMO_REPORT_TO", "").split(",") if a.strip()]
    if not host and not recipients:
        return None
    if not host or not recipients:
        missing = "HMO_SMTP_HOST" if not host else "HMO_REPORT_TO"
        raise ConfigurationError(f"the report's e-mail needs both HMO_SMTP_HOST and HMO_REPORT_TO; {missing} is unset")
    use_ssl = os.environ.get("HMO_SMTP_SSL", "0") == "1"
    port_text = os.environ.get("HMO_SMTP_PORT", "465" if use_ssl else "587")
    try:
        port = int(port_text)
    except ValueError:
        raise ConfigurationError(f"HMO_SMTP_PORT={port_text!r} is not a port number") from None
    return MailSettings(host, port, recipients, os.environ.get("HMO_SMTP_FROM") or f"hmo@{socket.getfqdn()}",
                        os.environ.get("HMO_SMTP_USER") or None, os.environ.get("HMO_SMTP_PASSWORD") or None,
                        use_ssl, os.environ.get("HMO_SMTP_STARTTLS", "1") != "0")


def message(settings: MailSettings, period_text: str, pdfs: list[Path], htmls: list[Path]) -> EmailMessage:
    from datetime import date

    year, month = (int(part) for part in period_text.split("-"))
    mail = EmailMessage()
    mail["Subject"] = SUBJECT.format(period=period_text)
    mail["From"] = settings.sender
    mail["To"] = ", ".join(settings.recipients)
    first = date(year, month, 1)
    mail.set_content(
        f"Adjunto el informe mensual del Observatorio de Movilidad Humana de {month_name(first, 'es')}.\n"
        f"Attached is the Human Mobility Observatory's monthly report for {month_name(first, 'en')}.\n\n"
        + "".join(f"- {path}\n" for path in htmls))
    for pdf in pdfs:
        mail.add_attachment(pdf.read_bytes(), maintype="application", subtype="pdf", filename=pdf.name)
    return mail


def send(settings: MailSettings, mail: EmailMessage) -> None:
    try:
        if settings.use_ssl:
            server: smtplib.SMTP = smtplib.SMTP_SSL(settings.host, settings.port, timeout=60,
                                                    context=ssl.create_default_context())
        else:
            server = smtplib.SMTP(settings.host, settings.port, timeout=60)
        with server:
            if not settings.use_ssl and settings.starttls:
                server.starttls(context=ssl.create_default_context())
            if settings.user:
                server.login(settings.user, settings.password or "")
            server.send_message(mail)
    except (OSError, smtplib.SMTPException) as exc:
        raise MailFailed(f"the report was not mailed to {', '.join(settings.recipients)} through "
                         f"{settings.host}:{settings.port}: {exc}") from exc
