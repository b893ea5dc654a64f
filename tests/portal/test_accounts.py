"""Portal accounts as the administrator manages them (`hmo users`) and as sign-in meets them."""
from __future__ import annotations

import contextlib
import io
import sqlite3

import pytest

from flows.cli import main
from portal.accounts import MAX_FAILED_SIGN_INS, Accounts, AccountError, SignInRefused

PASSWORD = "correct horse battery"


def hmo(*argv: str, stdin: str = "") -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err), \
            pytest.MonkeyPatch.context() as patch:
        patch.setattr("sys.stdin", io.StringIO(stdin))
        code = main(list(argv))
    return code, out.getvalue(), err.getvalue()


def test_users_add_prints_a_temporary_password_once_that_signs_in(paths):
    code, out, err = hmo("users", "add", "gtm", "Ana.Lopez@INE.gob.gt")
    assert code == 0, err
    password = out.splitlines()[-1].rsplit(": ", 1)[1]
    assert len(password) == 19  # four groups of four, easy to read aloud
    _, session = Accounts(paths).sign_in("ana.lopez@ine.gob.gt", password)
    assert session.user.scope == "GTM" and not session.user.is_staff
    # Only a hash is stored: the password is in no file of the portal.
    assert password.encode() not in (paths.root / "portal" / "accounts.sqlite3").read_bytes()


def test_users_commands_refuse_what_is_not_an_account_in_one_line(paths):
    assert hmo("users", "add", "XYZ", "a@b.org")[2] == (
        "hmo: 'XYZ' is neither a member country (ISO3, for example GTM) nor ADMIN or PPT\n")
    assert hmo("users", "add", "GTM", "not-an-address")[2] == "hmo: 'not-an-address' is not an e-mail address\n"
    assert hmo("users", "add", "GTM", "a@b.org", "--password-stdin", stdin="short\n")[2] == (
        "hmo: a password given on stdin must have at least 12 characters\n")
    assert hmo("users", "add", "GTM", "a@b.org")[0] == 0
    code, _, err = hmo("users", "add", "PAN", "a@b.org")
    assert code == 1 and "already has an account" in err
    code, _, err = hmo("users", "disable", "PAN", "a@b.org")
    assert (code, err) == (1, "hmo: a@b.org belongs to GTM, not PAN\n")
    assert hmo("users", "reset", "GTM", "nobody@b.org")[2] == "hmo: nobody@b.org has no account\n"


def test_disable_ends_sessions_and_reset_gives_a_new_password(paths):
    accounts = Accounts(paths)
    accounts.add("PAN", "luis@inec.gob.pa", PASSWORD)
    token, _ = accounts.sign_in("luis@inec.gob.pa", PASSWORD)
    assert hmo("users", "disable", "PAN", "luis@inec.gob.pa")[0] == 0
    assert accounts.session(token) is None
    with pytest.raises(SignInRefused, match="disabled"):
        accounts.sign_in("luis@inec.gob.pa", PASSWORD)
    code, out, _ = hmo("users", "reset", "PAN", "luis@inec.gob.pa")
    new = out.splitlines()[-1].rsplit(": ", 1)[1]
    assert code == 0 and new != PASSWORD
    with pytest.raises(SignInRefused):
        accounts.sign_in("luis@inec.gob.pa", PASSWORD)
    assert accounts.sign_in("luis@inec.gob.pa", new)[1].user.scope == "PAN"
    code, out, _ = hmo("users", "list", "--format", "csv")
    assert out.splitlines()[1].startswith("PAN,luis@inec.gob.pa,es,") and ",active,0" in out


def test_twenty_wrong_passwords_lock_the_account_for_a_while(paths, monkeypatch):
    monkeypatch.setenv("HMO_PORTAL_LOCK_MINUTES", "15")
    accounts = Accounts(paths)
    accounts.add("GTM", "ana@ine.gob.gt", PASSWORD)
    for _ in range(MAX_FAILED_SIGN_INS - 1):
        with pytest.raises(SignInRefused, match="^wrong password$"):
            accounts.sign_in("ana@ine.gob.gt", "guess", now=1000.0)
    with pytest.raises(SignInRefused, match="locked"):
        accounts.sign_in("ana@ine.gob.gt", "guess", now=1000.0)
    # Locked: even the right password is refused, until the lock runs out.
    with pytest.raises(SignInRefused, match="locked"):
        accounts.sign_in("ana@ine.gob.gt", PASSWORD, now=1000.0 + 14 * 60)
    assert accounts.list()[0]["state"] in ("locked", "active")  # `list` reads the real clock
    _, session = accounts.sign_in("ana@ine.gob.gt", PASSWORD, now=1000.0 + 16 * 60)
    assert session.user.email == "ana@ine.gob.gt"


def test_a_session_ends_when_idle_and_after_twelve_hours(paths, monkeypatch):
    monkeypatch.setenv("HMO_PORTAL_IDLE_MINUTES", "30")
    accounts = Accounts(paths)
    accounts.add("GTM", "ana@ine.gob.gt", PASSWORD)
    token, _ = accounts.sign_in("ana@ine.gob.gt", PASSWORD, now=0.0)
    assert accounts.session(token, now=29 * 60.0) is not None
    assert accounts.session(token, now=29 * 60.0 * 2) is not None  # each request restarts the idle clock
    assert accounts.session(token, now=29 * 60.0 * 2 + 31 * 60) is None
    token, _ = accounts.sign_in("ana@ine.gob.gt", PASSWORD, now=0.0)
    for minute in range(20, 12 * 60, 20):
        assert accounts.session(token, now=minute * 60.0) is not None
    assert accounts.session(token, now=12 * 3600.0 + 60) is None


def test_the_stored_token_opens_no_session(paths):
    accounts = Accounts(paths)
    accounts.add("GTM", "ana@ine.gob.gt", PASSWORD)
    token, _ = accounts.sign_in("ana@ine.gob.gt", PASSWORD)
    con = sqlite3.connect(accounts.path)
    stored = con.execute("select token_sha256 from sessions").fetchone()[0]
    con.close()
    assert stored != token and accounts.session(stored) is None and accounts.session(token) is not None


def test_an_unknown_email_is_refused_as_a_wrong_password_is(paths):
    accounts = Accounts(paths)
    accounts.add("GTM", "ana@ine.gob.gt", PASSWORD)
    with pytest.raises(SignInRefused):
        accounts.sign_in("nobody@ine.gob.gt", PASSWORD)
    with pytest.raises(SignInRefused):
        accounts.sign_in("not an address", PASSWORD)
    with pytest.raises(AccountError):
        accounts.set_language("ana@ine.gob.gt", "fr")
