"""The local stand-in for the iQmetrix accounts host, spoken to over real HTTP with `requests`.

It must behave like what is known of the real host (docs on the iQmetrix API), since the client
and every check in the suite are tested against it.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests
from django.core.management import CommandError, call_command

from onboarding.simulator import DEMO_ACCOUNT, Account, Simulator, load_accounts
from tests import simulator_fixtures

# The shared fixture, taken explicitly so this file does not depend on conftest.py.
simulator = simulator_fixtures.simulator

ROOT = Path(__file__).resolve().parent.parent
OTHER = Account(client_id="other-client", client_secret="other-secret-9x",
                username="other@example.test", password="other-password-9x")


def password_form(account: Account = DEMO_ACCOUNT, **overrides: str) -> dict[str, str]:
    form = {"grant_type": "password", "client_id": account.client_id,
            "client_secret": account.client_secret, "username": account.username,
            "password": account.password}
    form.update(overrides)
    return form


def post_token(sim: Simulator, form: dict[str, str]) -> requests.Response:
    return requests.post(sim.url + "/v1/oauth2/token", data=form, timeout=5)


def me(sim: Simulator, token: str) -> requests.Response:
    return requests.get(sim.url + "/v1/me", headers={"Authorization": f"Bearer {token}"},
                        timeout=5)


def test_password_grant_issues_tokens(simulator):
    answer = post_token(simulator, password_form())
    assert answer.status_code == 200
    data = answer.json()
    assert set(data) == {"access_token", "expires_in", "refresh_token"}
    assert data["expires_in"] == 43199 and data["access_token"] != data["refresh_token"]
    assert answer.headers["Cache-Control"] == "no-store"
    for name in ("Limit", "Remaining", "Reset", "ResetSeconds"):
        assert answer.headers[f"X-RateLimit-{name}"].isdigit()
    assert simulator.token_requests == 1 and simulator.issued_tokens == 1


def test_user_name_is_matched_without_regard_to_case(simulator):
    form = password_form(username=DEMO_ACCOUNT.username.upper())
    assert post_token(simulator, form).status_code == 200


@pytest.mark.parametrize(
    "overrides", [{"password": "wrong"}, {"username": "nobody@example.test"}, {"password": ""}]
)
def test_wrong_user_or_password_is_invalid_grant(simulator, overrides):
    answer = post_token(simulator, password_form(**overrides))
    assert answer.status_code == 400 and answer.json()["error"] == "invalid_grant"


@pytest.mark.parametrize("overrides", [{"client_secret": "wrong"}, {"client_id": "unknown"}])
def test_wrong_client_is_invalid_client(simulator, overrides):
    answer = post_token(simulator, password_form(**overrides))
    assert answer.status_code == 400 and answer.json()["error"] == "invalid_client"


def test_a_json_body_is_unsupported_grant_type(simulator):
    answer = requests.post(simulator.url + "/v1/oauth2/token", json=password_form(), timeout=5)
    assert answer.status_code == 400 and answer.json()["error"] == "unsupported_grant_type"


def test_parameters_in_the_query_string_are_unsupported_grant_type(simulator):
    answer = requests.post(simulator.url + "/v1/oauth2/token", params=password_form(), timeout=5)
    assert answer.status_code == 400 and answer.json()["error"] == "unsupported_grant_type"


def test_an_unknown_grant_type_is_unsupported(simulator):
    answer = post_token(simulator, password_form(grant_type="client_credentials"))
    assert answer.status_code == 400 and answer.json()["error"] == "unsupported_grant_type"


def test_me_answers_the_tokens_user(simulator):
    token = post_token(simulator, password_form()).json()["access_token"]
    answer = me(simulator, token)
    assert answer.status_code == 200
    data = answer.json()
    assert data["UserName"] == data["Email"] == DEMO_ACCOUNT.username
    assert isinstance(data["Id"], int) and isinstance(data["ParentEntityId"], int)


def test_me_without_a_valid_token_is_401_plain_text(simulator):
    for headers in ({}, {"Authorization": "Bearer not-a-token"}, {"Authorization": "Basic x"}):
        answer = requests.get(simulator.url + "/v1/me", headers=headers, timeout=5)
        assert answer.status_code == 401
        assert answer.headers["Content-Type"].startswith("text/plain")


def test_an_expired_token_is_refused(simulator):
    token = post_token(simulator, password_form()).json()["access_token"]
    simulator.expire_tokens()
    assert me(simulator, token).status_code == 401


def test_refresh_revokes_the_access_token_it_replaces(simulator):
    first = post_token(simulator, password_form()).json()
    second_password_grant = post_token(simulator, password_form()).json()
    refresh = {"grant_type": "refresh_token", "client_id": DEMO_ACCOUNT.client_id,
               "client_secret": DEMO_ACCOUNT.client_secret,
               "refresh_token": first["refresh_token"]}
    answer = post_token(simulator, refresh)
    assert answer.status_code == 200
    renewed = answer.json()
    assert me(simulator, first["access_token"]).status_code == 401
    assert me(simulator, renewed["access_token"]).status_code == 200
    # A new password grant does not revoke older tokens; only the refreshed one went.
    assert me(simulator, second_password_grant["access_token"]).status_code == 200
    # A refresh token works once.
    again = post_token(simulator, refresh)
    assert again.status_code == 400 and again.json()["error"] == "invalid_grant"


def test_refresh_token_of_another_client_is_invalid_grant():
    with Simulator(accounts=[DEMO_ACCOUNT, OTHER]) as sim:
        tokens = post_token(sim, password_form()).json()
        answer = post_token(sim, {"grant_type": "refresh_token", "client_id": OTHER.client_id,
                                  "client_secret": OTHER.client_secret,
                                  "refresh_token": tokens["refresh_token"]})
        assert answer.status_code == 400 and answer.json()["error"] == "invalid_grant"
        assert post_token(sim, password_form(OTHER)).status_code == 200


def test_ping(simulator):
    for path in ("/v1/ping", "/ping"):
        answer = requests.get(simulator.url + path, timeout=5)
        assert answer.status_code == 200
        assert answer.json() == {"ApplicationVersion": "2.0.0.1155", "DbVersion": 17}


def test_rate_limit_next_answers_429_then_recovers(simulator):
    simulator.rate_limit_next(2, retry_after=7)
    for _ in range(2):
        answer = post_token(simulator, password_form())
        assert answer.status_code == 429 and answer.text == "rate limit exceeded"
        assert answer.headers["Content-Type"].startswith("text/plain")
        assert answer.headers["Retry-After"] == "7"
        assert answer.headers["X-RateLimit-Remaining"] == "0"
    assert post_token(simulator, password_form()).status_code == 200
    assert simulator.token_requests == 3


def test_latency_delays_every_answer():
    with Simulator(latency_ms=300) as sim:
        started = time.monotonic()
        assert requests.get(sim.url + "/v1/ping", timeout=5).status_code == 200
        assert time.monotonic() - started >= 0.3


def test_the_access_log_shows_no_credentials(simulator, caplog):
    caplog.set_level(logging.DEBUG, logger="onboarding.simulator")
    requests.post(simulator.url + "/v1/oauth2/token?password=query-secret-1",
                  data=password_form(), timeout=5)
    assert "/v1/oauth2/token" in caplog.text
    for secret in ("query-secret-1", DEMO_ACCOUNT.password, DEMO_ACCOUNT.client_secret):
        assert secret not in caplog.text


def test_url_needs_a_bound_server_and_stop_is_idempotent():
    sim = Simulator()
    with pytest.raises(RuntimeError):
        _ = sim.url
    sim.start()
    assert sim.url.startswith("http://127.0.0.1:")
    sim.stop()
    sim.stop()


# --- accounts files ---------------------------------------------------------------------------


def write(tmp_path: Path, content: object) -> Path:
    path = tmp_path / "accounts.json"
    path.write_text(content if isinstance(content, str) else json.dumps(content))
    return path


def test_load_accounts_reads_a_list_of_accounts(tmp_path):
    entries = [vars(DEMO_ACCOUNT), vars(OTHER)]
    assert load_accounts(write(tmp_path, entries)) == [DEMO_ACCOUNT, OTHER]


@pytest.mark.parametrize(
    ("content", "words"),
    [
        ("[{not json", "not valid JSON"),
        ({"client_id": "x"}, "non-empty JSON list"),
        ([], "non-empty JSON list"),
        (["text"], "entry 1 is not a JSON object"),
        ([{**vars(OTHER), "password": ""}], "entry 1 needs non-empty text for password"),
        ([{"client_id": "a", "client_secret": "other-secret-9x"}], "username, password"),
        ([{**vars(OTHER), "pasword": "x"}], "unknown keys pasword"),
        ([vars(OTHER), vars(OTHER)], "entry 2 repeats"),
        # A RecursionError (a traceback from the command) before it was caught.
        ("[" * 100_000 + "]" * 100_000, "nests too deeply"),
    ],
)
def test_load_accounts_explains_a_bad_file_without_its_secrets(tmp_path, content, words):
    with pytest.raises(ValueError, match=words) as caught:
        load_accounts(write(tmp_path, content))
    assert OTHER.client_secret not in str(caught.value)
    assert OTHER.password not in str(caught.value)


def test_load_accounts_of_a_missing_file(tmp_path):
    with pytest.raises(ValueError, match="does not exist"):
        load_accounts(tmp_path / "missing.json")


# --- the command ------------------------------------------------------------------------------


def test_command_refuses_a_bad_accounts_file(tmp_path):
    with pytest.raises(CommandError, match="not valid JSON"):
        call_command("iqmetrix_simulator", "--port", "0", "--accounts", str(write(tmp_path, "[")))


@pytest.mark.parametrize("port", ["70000", "-1", "http"])
def test_a_port_outside_0_to_65535_is_a_usage_error_with_exit_2(port):
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "tests.settings"}
    result = subprocess.run(
        [sys.executable, "manage.py", "iqmetrix_simulator", "--port", port], cwd=ROOT, env=env,
        stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 2, result.stderr
    assert "--port: must be a port number from 0 to 65535" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize("latency", ["60001", "-1", "1e9"])
def test_a_latency_outside_0_to_a_minute_is_a_usage_error_with_exit_2(latency):
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "tests.settings"}
    result = subprocess.run(
        [sys.executable, "manage.py", "iqmetrix_simulator", "--latency-ms", latency], cwd=ROOT,
        env=env, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=60,
        check=False)
    assert result.returncode == 2, result.stderr
    assert "--latency-ms: must be a number of milliseconds from 0 to 60000" in result.stderr


def test_command_serves_until_sigterm():
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "tests.settings"}
    process = subprocess.Popen(
        [sys.executable, "manage.py", "iqmetrix_simulator", "--port", "0"],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        assert process.stdout is not None
        first = process.stdout.readline()
        assert first.startswith("iQmetrix simulator listening on http://127.0.0.1:"), first
        url = first.rsplit(" ", 1)[1].strip()
        assert DEMO_ACCOUNT.client_id in process.stdout.readline()
        assert requests.get(url + "/v1/ping", timeout=5).status_code == 200
        process.send_signal(signal.SIGTERM)
        out, err = process.communicate(timeout=10)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == 0, err
    assert "stopped" in out
    assert DEMO_ACCOUNT.client_secret not in out and DEMO_ACCOUNT.password not in out


def test_answers_are_sent_without_waiting_for_acknowledgements(simulator, monkeypatch):
    """Nagle's algorithm would hold an answer's body until the client acknowledged its headers,
    which a client on a kept-alive connection delays (40 ms on Linux)."""
    from onboarding import simulator as module

    seen = []
    handle = module._Handler.handle

    def recording(self):
        seen.append(self.connection.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))
        handle(self)

    monkeypatch.setattr(module._Handler, "handle", recording)
    with requests.Session() as session:  # two requests on one connection, as a check makes
        token = session.post(f"{simulator.url}/v1/oauth2/token", data=password_form(),
                             timeout=5).json()["access_token"]
        me = session.get(f"{simulator.url}/v1/me", timeout=5,
                         headers={"Authorization": f"Bearer {token}"})
    assert me.status_code == 200
    assert seen and all(seen)
