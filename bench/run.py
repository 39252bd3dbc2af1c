"""`make bench` (`python -m bench`): measure Aisle Keys against floors and targets.

Seeds its own data in its own databases: SQLite files in a temporary folder or, when
DATABASE_URL names PostgreSQL, throw-away databases created on that server and dropped at the end
(never the database DATABASE_URL names). Each measurement runs in a fresh child process
(bench/phases.py) with fresh keys. Prints a table and writes bench/results.json (SQLite) or
bench/results.postgresql.json, in the format of issue 7. Times are reported, never asserted.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import platform
import re
import secrets
import shutil
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import django

REPO = Path(__file__).resolve().parent.parent
HTTP_SECONDS = 20
HTTP_CLIENTS = 20
WRK_SCRIPT = Path(__file__).with_name("wrk_report.lua")


def _key(key_id: str) -> str:
    return f"{key_id}:{base64.urlsafe_b64encode(os.urandom(32)).decode()}"


@dataclass
class Bench:
    tmp: Path
    postgres_url: str | None
    keys: dict[str, str] = field(default_factory=dict)
    extra_env: dict[str, str] = field(default_factory=dict)
    created: list[str] = field(default_factory=list)

    def database(self, name: str) -> str:
        """A fresh, empty database for one phase; its URL."""
        if self.postgres_url is None:
            return f"sqlite:///{self.tmp / (name + '.sqlite3')}"
        db = f"aislekeys_bench_{name}_{os.getpid()}"
        self._admin(f'DROP DATABASE IF EXISTS "{db}"', f'CREATE DATABASE "{db}"')
        self.created.append(db)
        parts = urlsplit(self.postgres_url)
        return urlunsplit(parts._replace(path=f"/{db}"))

    def drop_databases(self) -> None:
        if self.created:
            self._admin(*(f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)' for db in self.created))

    def _admin(self, *statements: str) -> None:
        import psycopg

        parts = urlsplit(self.postgres_url or "")
        with psycopg.connect(urlunsplit(parts._replace(path="/postgres")),
                             autocommit=True) as conn:
            for statement in statements:
                conn.execute(statement)

    def env(self, database_url: str, **extra: str) -> dict[str, str]:
        """The child's whole environment: nothing from a developer's .env or shell settings."""
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "LANG": "C.UTF-8",
            "PYTHONDONTWRITEBYTECODE": "1",
            "DJANGO_SETTINGS_MODULE": "bench.settings",
            "DJANGO_READ_DOT_ENV": "false",
            "DEBUG": "false",
            "HTTPS": "false",
            "ALLOWED_HOSTS": "127.0.0.1,localhost,testserver",
            "LOG_LEVEL": "WARNING",
            "DATABASE_URL": database_url,
            **self.keys,
            **self.extra_env,
        }
        env.update(extra)
        return env


def phase(name: str, *args: str, env: dict[str, str], timeout: float = 300) -> dict:
    started = time.monotonic()
    done = subprocess.run(  # noqa: S603 -- our own interpreter and module
        [sys.executable, "-m", "bench.phases", name, *args], cwd=REPO, env=env,
        capture_output=True, text=True, timeout=timeout, check=False,
    )
    lines = [line for line in done.stdout.splitlines() if line.startswith("BENCH_RESULT ")]
    if done.returncode != 0 or not lines:
        raise SystemExit(f"bench phase {name} failed (exit {done.returncode}):\n"
                         f"{done.stderr[-3000:]}")
    result = json.loads(lines[-1].removeprefix("BENCH_RESULT "))
    shown = {k: v for k, v in result.items() if k != "session"}
    print(f"  {name}: {time.monotonic() - started:.1f} s {json.dumps(shown)}", flush=True)
    return result


@contextmanager
def simulator(env: dict[str, str], latency_ms: int) -> Iterator[str]:
    """The iQmetrix simulator in its own process, so it takes no time from the measured one."""
    child = subprocess.Popen(  # noqa: S603 -- our own manage.py
        [sys.executable, "manage.py", "iqmetrix_simulator", "--port", "0",
         "--latency-ms", str(latency_ms)],
        cwd=REPO, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, text=True,
    )
    try:
        assert child.stdout is not None
        for line in child.stdout:
            found = re.search(r"listening on (http://\S+)", line)
            if found:
                yield found.group(1)
                break
        else:
            raise SystemExit("the iQmetrix simulator did not start")
    finally:
        child.terminate()
        child.wait(timeout=10)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def gunicorn(env: dict[str, str]) -> Iterator[str]:
    """The production server as `make serve` runs it (sync workers, two of them)."""
    import requests

    port = _free_port()
    child = subprocess.Popen(  # noqa: S603 -- gunicorn from our virtualenv
        [sys.executable, "-m", "gunicorn", "dashboard.wsgi:application",
         "--bind", f"127.0.0.1:{port}", "--workers", "2", "--timeout", "60",
         "--no-control-socket"],
        cwd=REPO, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE, text=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if requests.get(f"{base}/accounts/login/", timeout=10).status_code == 200:
                    break
            except requests.RequestException:
                pass  # not listening yet, or still importing Django
            if time.monotonic() > deadline or child.poll() is not None:
                raise SystemExit("gunicorn did not start:\n" + (child.stderr.read()
                                                               if child.poll() is not None
                                                               else ""))
            time.sleep(0.2)
        yield base
    finally:
        child.terminate()
        child.wait(timeout=30)


def wrk(url: str, session: str) -> dict:
    """HTTP_CLIENTS connections for HTTP_SECONDS; every answer but a 200 counts as an error, and
    so does no answer within gunicorn's own worker timeout (30 s); slower answers show in p99."""
    done = subprocess.run(  # noqa: S603 -- wrk found on PATH by http()
        [shutil.which("wrk") or "wrk", "-t", "2", "-c", str(HTTP_CLIENTS),
         "-d", f"{HTTP_SECONDS}s", "--timeout", "30s", "-s", str(WRK_SCRIPT),
         "-H", f"Cookie: sessionid={session}", url],
        capture_output=True, text=True, timeout=HTTP_SECONDS + 60, check=True,
    )
    line = next(x for x in done.stdout.splitlines() if x.startswith("WRK_RESULT "))
    return json.loads(line.removeprefix("WRK_RESULT "))


def http(bench: Bench, database_url: str, session: str) -> dict:
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is not installed: apt-get install wrk (make bench does it as root)")
    with gunicorn(bench.env(database_url)) as base:
        import requests

        cookies = {"sessionid": session}
        for path in ("/", "/bench/floor/"):  # warm both workers up, and prove the session works
            for _ in range(4):
                answer = requests.get(base + path, cookies=cookies, allow_redirects=False,
                                      timeout=30)
                if answer.status_code != 200:
                    raise SystemExit(f"GET {path} answered {answer.status_code}, not 200")
        page = wrk(base + "/", session)
        print(f"  http /: {HTTP_SECONDS} s", flush=True)
        floor = wrk(base + "/bench/floor/", session)
        print(f"  http /bench/floor/: {HTTP_SECONDS} s", flush=True)
    seconds = page["duration_us"] / 1e6
    return {
        "clients": HTTP_CLIENTS, "requests": page["requests"],
        "errors": page["socket_errors"] + page["non_200"],
        "rps": round(page["requests"] / seconds, 1), "p99_ms": round(page["p99_us"] / 1000, 1),
        "floor_rps": round(floor["requests"] / (floor["duration_us"] / 1e6), 1),
        "floor_errors": floor["socket_errors"] + floor["non_200"],
    }


def machine(postgres_url: str | None) -> str:
    cpu = "unknown CPU"
    try:
        info = Path("/proc/cpuinfo").read_text()
        cpu = re.search(r"model name\s*:\s*(.+)", info).group(1).strip()  # type: ignore[union-attr]
    except (OSError, AttributeError):
        pass
    try:
        pages = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
        memory = f"{pages / 2**30:.0f} GiB"
    except (ValueError, OSError):
        memory = "? GiB"
    database = "PostgreSQL" if postgres_url else f"SQLite {sqlite3.sqlite_version}"
    return (f"{cpu}, {os.cpu_count()} cores, {memory}, {platform.system()} "
            f"{platform.release()}, Python {platform.python_version()}, "
            f"Django {django.get_version()}, {database}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n")[0])
    parser.add_argument("--only", choices=ONE_PHASE,
                        help="run this one measurement, print it and write no results file")
    args = parser.parse_args(argv)
    started = time.monotonic()
    url = os.environ.get("DATABASE_URL", "")
    postgres_url = url if url.startswith(("postgres://", "postgresql://")) else None
    name = "results.postgresql.json" if postgres_url else "results.json"
    out = REPO / "bench" / name
    print(f"Aisle Keys benchmark on {machine(postgres_url)}", flush=True)
    print(f"load average before: {os.getloadavg()[0]:.2f}", flush=True)
    with tempfile.TemporaryDirectory(prefix="aislekeys-bench-") as tmp:
        bench = Bench(tmp=Path(tmp), postgres_url=postgres_url, keys={
            "SECRET_KEY": secrets.token_urlsafe(50),
            "FIELD_ENCRYPTION_KEYS": _key("bench1"),
            "AUDIT_HMAC_KEY": secrets.token_urlsafe(48),
        })
        try:
            if args.only:
                run_one(bench, args.only)
                return 0
            results = run_all(bench)
        finally:
            bench.drop_databases()
    out.write_text(json.dumps(results, indent=2) + "\n")
    print(table(results))
    print(f"load average after: {os.getloadavg()[0]:.2f} (1 minute; {os.cpu_count()} cores)")
    print(f"wrote {out.relative_to(REPO)} in {time.monotonic() - started:.0f} s")
    return 0


ONE_PHASE = ("overview", "check_overhead", "check_all")


def run_one(bench: Bench, name: str) -> dict:
    """One measurement on its own, as run_all makes it: for trying a change quickly."""
    if name == "overview":
        return phase("overview", env=bench.env(bench.database("overview")), timeout=600)
    sim_env = bench.env(f"sqlite:///{bench.tmp / 'simulator.sqlite3'}")
    with simulator(sim_env, latency_ms=20 if name == "check_overhead" else 100) as sim:
        return phase(name, sim, env=bench.env(bench.database(name),
                                              IQMETRIX_SANDBOX_ACCOUNTS_URL=sim))


def run_all(bench: Bench) -> dict:
    overview_db = bench.database("overview")
    overview = phase("overview", env=bench.env(overview_db), timeout=600)
    http_result = http(bench, overview_db, overview["session"])
    # The simulator touches no database; any URL satisfies the settings.
    sim_env = bench.env(f"sqlite:///{bench.tmp / 'simulator.sqlite3'}")
    with simulator(sim_env, latency_ms=20) as sim:
        overhead = phase("check_overhead", sim, env=bench.env(
            bench.database("overhead"), IQMETRIX_SANDBOX_ACCOUNTS_URL=sim))
    with simulator(sim_env, latency_ms=100) as sim:
        check_all = phase("check_all", sim, env=bench.env(
            bench.database("check_all"), IQMETRIX_SANDBOX_ACCOUNTS_URL=sim))
    rotation = []
    for count in (4000, 40000):
        db = bench.database(f"rotation{count}")
        old = bench.keys["FIELD_ENCRYPTION_KEYS"]
        phase("rotation_seed", str(count), env=bench.env(db))
        rotation.append(phase("rotation_run", str(count),
                              env=bench.env(db, FIELD_ENCRYPTION_KEYS=f"{_key('bench2')},{old}")))
    audit = phase("audit", env=bench.env(bench.database("audit")), timeout=600)
    floor_errors = http_result.pop("floor_errors")
    if floor_errors:
        print(f"warning: the floor view had {floor_errors} errors under load", flush=True)
    return {
        "overview": overview["rows"],
        "overview_empty": overview["empty"],
        "check_overhead": overhead,
        "check_all": check_all,
        "rotation": rotation,
        "audit_verify": audit["rows"],
        "http": http_result,
    }


def _verdict(ok: bool) -> str:
    return "met" if ok else "MISSED"


def targets(r: dict) -> list[tuple[str, str]]:
    rows = r["overview"]
    queries = {row["queries"] for row in rows}
    cold_queries = {row.get("cold_queries", row["queries"]) for row in rows}
    biggest = rows[-1]
    rot_small, rot_big = r["rotation"]
    audit_small, audit_big = r["audit_verify"]
    growth = audit_big["seconds"] / audit_small["seconds"]
    size_growth = audit_big["events"] / audit_small["events"]
    memory = rot_big["peak_rss_mb"] / rot_small["peak_rss_mb"]
    return [
        (f"overview queries same at every size and <= 15 ({sorted(queries)} with the page "
         f"cached, {sorted(cold_queries)} rendering them)",
         _verdict(len(queries) == 1 and len(cold_queries) == 1
                  and max(queries | cold_queries) <= 15)),
        (f"overview ratio <= 3 at {biggest['integrations']} ({biggest['ratio']})",
         _verdict(biggest["ratio"] <= 3)),
        (f"check overhead ratio <= 1.25 ({r['check_overhead']['ratio']})",
         _verdict(r["check_overhead"]["ratio"] <= 1.25)),
        (f"check_all ratio <= 1.3 ({r['check_all']['ratio']})",
         _verdict(r["check_all"]["ratio"] <= 1.3)),
        (f"rotation peak RSS at 40,000 <= 1.2 x at 4,000 ({memory:.2f} x)",
         _verdict(memory <= 1.2)),
        (f"audit verify linear: {size_growth:.0f} x events took {growth:.1f} x the time",
         _verdict(growth <= size_growth * 1.5)),
        (f"http zero errors ({r['http']['errors']})", _verdict(r["http"]["errors"] == 0)),
    ]


def _sql(row: dict) -> str:
    return f"SQL {row['sql_median_ms']} ms"


def _overview_line(label: str, row: dict) -> str:
    return (f"| overview, {label}, {row['queries']} queries | {row['median_ms']} ms "
            f"({_sql(row)}) | {row['floor_median_ms']} ms | {row['ratio']} |")


def table(r: dict) -> str:
    lines = ["", "| measurement | result | floor / ideal | ratio |", "|---|---|---|---|"]
    if "overview_empty" in r:
        lines.append(_overview_line("no integrations (its fixed cost)", r["overview_empty"]))
    for row in r["overview"]:
        lines.append(_overview_line(f"{row['integrations']:,} integrations", row))
    for row in r["overview"]:
        if "cold_median_ms" in row:
            lines.append(f"| overview, {row['integrations']:,} integrations, page rendered (first "
                         f"visit after a change), {row['cold_queries']} queries "
                         f"| {row['cold_median_ms']} ms | {row['floor_median_ms']} ms "
                         f"| {row['cold_ratio']} |")
    c = r["check_overhead"]
    lines.append(f"| check, simulator {c['latency_ms']} ms | {c['median_ms']} ms ({_sql(c)}) "
                 f"| {c['raw_median_ms']} ms (bare POST) | {c['ratio']} |")
    a = r["check_all"]
    lines.append(f"| run_checks, {a['packages']} packages, {a['latency_ms']} ms, "
                 f"{a['concurrency']} at a time | {a['wall_s']} s | {a['ideal_s']} s "
                 f"| {a['ratio']} |")
    for row in r["rotation"]:
        lines.append(f"| key rotation, {row['values']:,} values | {row['seconds']} s, "
                     f"peak RSS {row['peak_rss_mb']} MB | | |")
    for row in r["audit_verify"]:
        lines.append(f"| audit verify, {row['events']:,} events | {row['seconds']} s | | |")
    h = r["http"]
    lines.append(f"| HTTP overview, {h['clients']} clients, {HTTP_SECONDS} s | {h['rps']} req/s, "
                 f"p99 {h['p99_ms']} ms, {h['requests']} requests, {h['errors']} errors "
                 f"| {h['floor_rps']} req/s | {round(h['floor_rps'] / h['rps'], 2)} |")
    lines += ["", "| target | |", "|---|---|"]
    lines += [f"| {what} | {verdict} |" for what, verdict in targets(r)]
    return "\n".join(lines)


if __name__ == "__main__":
    raise SystemExit(main())
