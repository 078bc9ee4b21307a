"""Shared harness for pilotfish integration tests (Python 3 stdlib only).

Every test file is a standalone script run by ctest as
    /usr/bin/python3 tests/integration/test_X.py
with PILOTFISH (binary), PF_SOURCE_DIR (repo root) and PF_SANITIZE (ON/OFF) in
the environment.  This module provides:

  * free_port()                      -- bind port 0 on 127.0.0.1 and return it
  * config builders + to_yaml()      -- Envoy v3 bootstrap as Python dicts
  * Proxy                            -- start/ready/stop the real binary
  * Upstream                         -- scriptable threaded HTTP/1.1 server
  * HttpConn / read_response()       -- raw-socket HTTP/1.1 client
  * curl()                           -- run curl as a subprocess
  * RssMonitor                       -- sample /proc/PID/status VmRSS
  * ProxyTestCase                    -- unittest.TestCase that dumps proxy logs
                                        when a test fails

No sleeps are used for synchronisation: every wait is a bounded deadline loop
polling a condition.
"""

import atexit
import errno
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import unittest
import urllib.parse

# --------------------------------------------------------------------------
# Environment

SOURCE_DIR = os.environ.get("PF_SOURCE_DIR") or os.path.dirname(
    os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SANITIZE = os.environ.get("PF_SANITIZE", "OFF").upper() in ("ON", "1", "TRUE", "YES")
# Timeout factor: sanitizer builds are several times slower.
TF = 3.0 if SANITIZE else 1.0
BINARY = os.environ.get("PILOTFISH") or os.path.join(SOURCE_DIR, "build", "pilotfish")
# Size used by the "1 GiB" streaming tests.
GIB_TEST_SIZE = (256 << 20) if SANITIZE else (1 << 30)

LOCAL = "127.0.0.1"

_TMP_ROOT = tempfile.mkdtemp(prefix="pftest-")


def _cleanup_tmp():
    if os.environ.get("PF_KEEP_TMP"):
        sys.stderr.write("pftest: keeping %s\n" % _TMP_ROOT)
        return
    shutil.rmtree(_TMP_ROOT, ignore_errors=True)


atexit.register(_cleanup_tmp)


def tmpdir(prefix="t"):
    return tempfile.mkdtemp(prefix=prefix + "-", dir=_TMP_ROOT)


# Ports handed out are reserved machine-wide for a while: test programs run
# in parallel, and a port one of them picked (bind to 0, then close) could be
# picked again by another before its proxy binds it.  pilotfish listens with
# SO_REUSEPORT, so two proxies of one user would then share the port and
# each get some of the other's connections.
_PORT_DIR = os.path.join(tempfile.gettempdir(), "pftest-ports")
_PORT_HOLD_S = 1200


def _reserve(port):
    os.makedirs(_PORT_DIR, exist_ok=True)
    path = os.path.join(_PORT_DIR, str(port))
    for _ in range(2):
        try:
            os.close(os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644))
            return True
        except FileExistsError:
            try:
                if time.time() - os.stat(path).st_mtime < _PORT_HOLD_S:
                    return False
                os.unlink(path)             # an old run's: take it over
            except FileNotFoundError:
                pass
    return False


def free_port():
    """A port on 127.0.0.1 that was free a moment ago (bind to port 0) and
    that no other test program took in the last _PORT_HOLD_S seconds."""
    for _ in range(200):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            s.bind((LOCAL, 0))
            port = s.getsockname()[1]
        finally:
            s.close()
        if _reserve(port):
            return port
    raise RuntimeError("free_port: no unreserved port in 200 tries (%s)" % _PORT_DIR)


def port_is_free(port, host=LOCAL):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        s.bind((host, port))
        return True
    except OSError:
        return False
    finally:
        s.close()


def wait_until(pred, timeout, interval=0.01, what="condition"):
    """Poll pred() until it returns a truthy value or the deadline passes."""
    deadline = time.monotonic() + timeout
    while True:
        v = pred()
        if v:
            return v
        if time.monotonic() >= deadline:
            raise TimeoutError("timed out after %.1fs waiting for %s" % (timeout, what))
        time.sleep(interval)


# --------------------------------------------------------------------------
# YAML emitter (block style, enough for Envoy bootstraps)

_PLAIN_RE = re.compile(r"[A-Za-z0-9_./-][A-Za-z0-9_./:*-]*\Z")
_AMBIGUOUS = {"true", "false", "yes", "no", "on", "off", "null", "y", "n", "~"}


def _scalar(v):
    if v is True:
        return "true"
    if v is False:
        return "false"
    if v is None:
        return "null"
    if isinstance(v, (int, float)):
        return repr(v)
    s = str(v)
    plain = bool(_PLAIN_RE.match(s)) and s.lower() not in _AMBIGUOUS
    if plain:
        try:
            float(s)
            plain = False
        except ValueError:
            pass
    return s if plain else json.dumps(s)


def to_yaml(obj, indent=0):
    pad = " " * indent
    out = []
    if isinstance(obj, dict):
        for k, v in obj.items():
            key = _scalar(k)
            if isinstance(v, dict) and v:
                out.append("%s%s:\n%s" % (pad, key, to_yaml(v, indent + 2)))
            elif isinstance(v, list) and v:
                out.append("%s%s:\n%s" % (pad, key, to_yaml(v, indent + 2)))
            elif isinstance(v, dict):
                out.append("%s%s: {}\n" % (pad, key))
            elif isinstance(v, list):
                out.append("%s%s: []\n" % (pad, key))
            else:
                out.append("%s%s: %s\n" % (pad, key, _scalar(v)))
    elif isinstance(obj, list):
        for item in obj:
            if isinstance(item, (dict, list)) and item:
                block = to_yaml(item, indent + 2)
                out.append(pad + "- " + block[indent + 2:])
            elif isinstance(item, dict):
                out.append(pad + "- {}\n")
            elif isinstance(item, list):
                out.append(pad + "- []\n")
            else:
                out.append(pad + "- " + _scalar(item) + "\n")
    else:
        out.append(pad + _scalar(obj) + "\n")
    return "".join(out)


# --------------------------------------------------------------------------
# Config builders

HCM_TYPE = ("type.googleapis.com/envoy.extensions.filters.network."
            "http_connection_manager.v3.HttpConnectionManager")
ROUTER_TYPE = "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"


def sockaddr(port, address=LOCAL):
    return {"socket_address": {"address": address, "port_value": port}}


def match_prefix(p):
    return {"prefix": p}


def match_path(p):
    return {"path": p}


def route(match, cluster=None, weighted=None, **opts):
    """A route entry forwarding to `cluster` (or weighted [(name, weight)])."""
    r = {}
    if weighted is not None:
        r["weighted_clusters"] = {"clusters": [{"name": n, "weight": w} for n, w in weighted]}
    else:
        r["cluster"] = cluster
    r.update(opts)
    return {"match": match, "route": r}


def direct(match, status, body=None):
    d = {"status": status}
    if body is not None:
        d["body"] = {"inline_string": body}
    return {"match": match, "direct_response": d}


def vhost(name, domains, routes):
    return {"name": name, "domains": list(domains), "routes": list(routes)}


def listener(name, port, vhosts, max_request_headers_kb=None, stat_prefix="ingress_http"):
    hcm = {"@type": HCM_TYPE, "stat_prefix": stat_prefix}
    if max_request_headers_kb is not None:
        hcm["max_request_headers_kb"] = max_request_headers_kb
    hcm["route_config"] = {"name": "local", "virtual_hosts": list(vhosts)}
    hcm["http_filters"] = [{"name": "envoy.filters.http.router",
                            "typed_config": {"@type": ROUTER_TYPE}}]
    return {
        "name": name,
        "address": sockaddr(port),
        "filter_chains": [{"filters": [{
            "name": "envoy.filters.network.http_connection_manager",
            "typed_config": hcm}]}],
    }


def cluster(name, endpoints, type="STATIC", connect_timeout="0.25s", **extra):
    """endpoints: list of ports (on 127.0.0.1) or (address, port) tuples."""
    eps = []
    for ep in endpoints:
        if isinstance(ep, int):
            ep = (LOCAL, ep)
        eps.append({"endpoint": {"address": sockaddr(ep[1], ep[0])}})
    c = {"name": name, "type": type, "connect_timeout": connect_timeout}
    c.update(extra)
    if eps:
        c["load_assignment"] = {"cluster_name": name, "endpoints": [{"lb_endpoints": eps}]}
    else:
        c["load_assignment"] = {"cluster_name": name, "endpoints": []}
    return c


def bootstrap(listeners, clusters, admin_port=None):
    b = {}
    if admin_port is not None:
        b["admin"] = {"address": sockaddr(admin_port)}
    b["static_resources"] = {"listeners": list(listeners), "clusters": list(clusters)}
    return b


def simple_bootstrap(port, admin_port, routes, clusters, domains=("*",), **lkw):
    return bootstrap([listener("main", port, [vhost("svc", domains, routes)], **lkw)],
                     clusters, admin_port)


# --------------------------------------------------------------------------
# Buffered socket helper shared by the client and the upstream


class Incomplete(Exception):
    """Peer closed (or reset) before a complete HTTP message arrived."""


class BufSock:
    def __init__(self, sock):
        self.sock = sock
        self.buf = bytearray()

    def _fill(self, n=65536):
        try:
            data = self.sock.recv(n)
        except ConnectionResetError as e:
            raise Incomplete("connection reset: %s" % e)
        if not data:
            raise Incomplete("connection closed by peer")
        self.buf += data

    def read_until(self, delim, limit=1 << 20):
        while True:
            i = self.buf.find(delim)
            if i >= 0:
                out = bytes(self.buf[:i + len(delim)])
                del self.buf[:i + len(delim)]
                return out
            if len(self.buf) > limit:
                raise ValueError("line too long")
            self._fill()

    def read_line(self):
        return self.read_until(b"\r\n")[:-2]

    def read_exact(self, n):
        while len(self.buf) < n:
            self._fill(max(65536, n - len(self.buf)))
        out = bytes(self.buf[:n])
        del self.buf[:n]
        return out

    def discard_exact(self, n, scratch=None):
        """Read and drop n bytes without buffering them; returns n."""
        take = min(n, len(self.buf))
        del self.buf[:take]
        left = n - take
        if left:
            mv = scratch if scratch is not None else memoryview(bytearray(1 << 20))
            while left:
                try:
                    got = self.sock.recv_into(mv, min(left, len(mv)))
                except ConnectionResetError as e:
                    raise Incomplete("connection reset after %d of %d bytes: %s" % (n - left, n, e))
                if not got:
                    raise Incomplete("connection closed after %d of %d bytes" % (n - left, n))
                left -= got
        return n

    def read_to_eof(self):
        out = bytes(self.buf)
        self.buf.clear()
        while True:
            try:
                data = self.sock.recv(65536)
            except ConnectionResetError:
                break
            if not data:
                break
            out += data
        return out


def parse_headers(lines):
    hdrs = []
    for ln in lines:
        s = ln.decode("latin-1")
        name, _, value = s.partition(":")
        hdrs.append((name, value.strip(" \t")))
    return hdrs


class Headers(list):
    """List of (name, value) with case-insensitive lookups."""

    def get(self, name, default=None):
        n = name.lower()
        for k, v in self:
            if k.lower() == n:
                return v
        return default

    def get_all(self, name):
        n = name.lower()
        return [v for k, v in self if k.lower() == n]

    def has(self, name):
        return self.get(name) is not None


# --------------------------------------------------------------------------
# HTTP client


class Response:
    def __init__(self):
        self.version = None
        self.status = None
        self.reason = None
        self.headers = Headers()
        self.body = b""
        self.body_len = 0
        self.trailers = Headers()
        self.informational = []  # [(status, Headers)]
        self.chunked = False

    def json(self):
        return json.loads(self.body.decode("utf-8"))

    def __repr__(self):
        return "<Response %s %r headers=%r body=%r>" % (
            self.status, self.reason, list(self.headers), self.body[:300])


def _read_status_and_headers(bs):
    head = bs.read_until(b"\r\n\r\n", limit=1 << 21)
    lines = head[:-4].split(b"\r\n")
    m = re.match(rb"(HTTP/\d\.\d) (\d{3})(?: (.*))?$", lines[0])
    if not m:
        raise ValueError("bad status line: %r" % lines[0])
    return m.group(1).decode(), int(m.group(2)), (m.group(3) or b"").decode("latin-1"), \
        Headers(parse_headers(lines[1:]))


def read_chunked(bs, store=True, scratch=None):
    """Read a chunked body; returns (body_bytes_or_empty, length, trailers)."""
    parts = []
    total = 0
    while True:
        line = bs.read_line()
        size = int(line.split(b";")[0].strip(), 16)
        if size == 0:
            break
        if store:
            parts.append(bs.read_exact(size))
        else:
            bs.discard_exact(size, scratch)
        total += size
        if bs.read_exact(2) != b"\r\n":
            raise ValueError("missing CRLF after chunk")
    trailers = Headers()
    while True:
        line = bs.read_line()
        if not line:
            break
        trailers.extend(parse_headers([line]))
    return b"".join(parts), total, trailers


def read_response(bs, method="GET", store=True):
    """Read one response (skipping/recording 1xx) from a BufSock."""
    r = Response()
    while True:
        r.version, r.status, r.reason, r.headers = _read_status_and_headers(bs)
        if 100 <= r.status < 200 and r.status != 101:
            r.informational.append((r.status, r.headers))
            continue
        break
    if method == "HEAD" or r.status in (204, 304) or 100 <= r.status < 200:
        return r
    te = (r.headers.get("transfer-encoding") or "").lower()
    cl = r.headers.get("content-length")
    scratch = None if store else memoryview(bytearray(1 << 20))
    if "chunked" in te:
        r.chunked = True
        r.body, r.body_len, r.trailers = read_chunked(bs, store, scratch)
    elif cl is not None:
        n = int(cl)
        if store:
            r.body = bs.read_exact(n)
        else:
            bs.discard_exact(n, scratch)
        r.body_len = n
    else:
        r.body = bs.read_to_eof()
        r.body_len = len(r.body)
    return r


def build_request(method, path, headers=None, body=None, host="example.com", chunked=False):
    hdrs = [("Host", host)] if host is not None else []
    hdrs += list(headers or [])
    names = {k.lower() for k, _ in hdrs}
    if body is not None and not chunked and "content-length" not in names \
            and "transfer-encoding" not in names:
        hdrs.append(("Content-Length", str(len(body))))
    if chunked:
        hdrs.append(("Transfer-Encoding", "chunked"))
    out = "%s %s HTTP/1.1\r\n" % (method, path)
    out += "".join("%s: %s\r\n" % kv for kv in hdrs)
    out += "\r\n"
    data = out.encode("latin-1")
    if body is not None:
        if chunked:
            data += b"".join(b"%x\r\n%s\r\n" % (len(c), c) for c in body if c) + b"0\r\n\r\n"
        else:
            data += body
    return data


class HttpConn:
    """A raw HTTP/1.1 client connection to 127.0.0.1:port."""

    def __init__(self, port, timeout=None, host=LOCAL):
        self.port = port
        self.sock = socket.create_connection((host, port), timeout=timeout or 10 * TF)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.bs = BufSock(self.sock)

    def send(self, data):
        self.sock.sendall(data)

    def request(self, method, path, headers=None, body=None, host="example.com",
                chunked=False, store=True):
        self.send(build_request(method, path, headers, body, host, chunked))
        return read_response(self.bs, method, store=store)

    def get(self, path, **kw):
        return self.request("GET", path, **kw)

    def read_response(self, method="GET", store=True):
        return read_response(self.bs, method, store=store)

    def wait_closed(self, timeout=None):
        """True if the peer closes (EOF or reset) within timeout; False if still open.
        Any bytes received before the close are returned in self.trailing."""
        self.sock.settimeout(timeout or 5 * TF)
        self.trailing = bytes(self.bs.buf)
        self.bs.buf.clear()
        try:
            while True:
                data = self.sock.recv(65536)
                if not data:
                    return True
                self.trailing += data
        except (ConnectionResetError, BrokenPipeError):
            return True
        except socket.timeout:
            return False

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def __enter__(self):
        return self

    def __exit__(self, *a):
        self.close()


def stats(admin_port):
    """Every integer stat of the admin port's /stats, as a dict."""
    with HttpConn(admin_port) as c:
        r = c.get("/stats", host="127.0.0.1")
    out = {}
    for line in r.body.decode().splitlines():
        k, sep, v = line.partition(": ")
        if sep:
            try:
                out[k] = int(v)
            except ValueError:
                pass
    return out


def stat(admin_port, name):
    """One stat's value from the admin port's /stats (0 when absent)."""
    with HttpConn(admin_port) as c:
        body = c.request("GET", "/stats?filter=^%s$" % name.replace(".", r"\."),
                         host="127.0.0.1").body.decode()
    for line in body.splitlines():
        k, _, v = line.partition(": ")
        if k == name:
            return int(v)
    return 0


def http_get(port, path, **kw):
    with HttpConn(port) as c:
        return c.get(path, **kw)


def curl(args, timeout=None):
    """Run curl (no proxy env) and return CompletedProcess with bytes output."""
    env = {k: v for k, v in os.environ.items()
           if k.lower() not in ("http_proxy", "https_proxy", "all_proxy", "no_proxy")}
    return subprocess.run(["curl", "-sS", "--noproxy", "*"] + list(args),
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          timeout=timeout or 30 * TF, env=env)


# --------------------------------------------------------------------------
# The proxy under test


class Proxy:
    """Runs $PILOTFISH with a config file; stdout/stderr go to files."""

    def __init__(self, config=None, args=None, name="pilotfish", config_yaml=None,
                 concurrency=2, log_level="debug", drain_time_s=2, listen_ports=None,
                 admin_port=None, extra_args=None):
        self.dir = tmpdir(name)
        self.name = name
        self.config_path = None
        if config is not None:
            self.config_path = os.path.join(self.dir, "config.yaml")
            with open(self.config_path, "w") as f:
                f.write(config if isinstance(config, str) else to_yaml(config))
        if args is None:
            args = []
            if self.config_path:
                args += ["-c", self.config_path]
            if config_yaml is not None:
                args += ["--config-yaml",
                         config_yaml if isinstance(config_yaml, str) else to_yaml(config_yaml)]
            args += ["--concurrency", str(concurrency), "-l", log_level,
                     "--drain-time-s", str(drain_time_s)]
            args += list(extra_args or [])
        self.args = [BINARY] + list(args)
        self.stdout_path = os.path.join(self.dir, "stdout.log")
        self.stderr_path = os.path.join(self.dir, "stderr.log")
        self.listen_ports = list(listen_ports or [])
        self.admin_port = admin_port
        if isinstance(config, dict):
            if admin_port is None and "admin" in config:
                self.admin_port = config["admin"]["address"]["socket_address"]["port_value"]
            if not self.listen_ports:
                for l in config.get("static_resources", {}).get("listeners", []):
                    self.listen_ports.append(l["address"]["socket_address"]["port_value"])
        self.proc = None
        self.returncode = None

    # -- process control
    def start(self, wait=True, timeout=None):
        self._out = open(self.stdout_path, "wb")
        self._err = open(self.stderr_path, "wb")
        self.proc = subprocess.Popen(self.args, stdin=subprocess.DEVNULL,
                                     stdout=self._out, stderr=self._err)
        _LIVE.append(self)
        if wait:
            self.wait_ready(timeout)
        return self

    @property
    def pid(self):
        return self.proc.pid

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def _admin_ready(self):
        try:
            with HttpConn(self.admin_port, timeout=1 * TF) as c:
                r = c.get("/ready", host="127.0.0.1")
                return r.status == 200
        except (OSError, Incomplete, ValueError):
            return False

    def _can_connect(self, port):
        try:
            s = socket.create_connection((LOCAL, port), timeout=1 * TF)
            s.close()
            return True
        except OSError:
            return False

    def wait_ready(self, timeout=None):
        timeout = timeout or 15 * TF
        deadline = time.monotonic() + timeout
        pending_admin = self.admin_port is not None
        pending_ports = list(self.listen_ports)
        while True:
            if self.proc.poll() is not None:
                raise AssertionError("proxy exited early with code %s\n%s" % (
                    self.proc.returncode, self.describe()))
            if pending_admin and self._admin_ready():
                pending_admin = False
            pending_ports = [p for p in pending_ports if not self._can_connect(p)]
            if not pending_admin and not pending_ports:
                return
            if time.monotonic() >= deadline:
                raise AssertionError("proxy not ready after %.1fs (admin pending=%s, ports "
                                     "pending=%s)\n%s" % (timeout, pending_admin,
                                                          pending_ports, self.describe()))
            time.sleep(0.01)

    def send_signal(self, sig):
        self.proc.send_signal(sig)

    def wait(self, timeout):
        try:
            self.returncode = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.returncode = self.proc.wait()
            raise AssertionError("proxy did not exit within %.1fs after signal; killed\n%s"
                                 % (timeout, self.describe()))
        finally:
            self._close_files()
        return self.returncode

    def wait_exit(self, timeout=None, check=True):
        """Wait for an already-signalled proxy to exit (never re-signals);
        with check, assert exit code 0."""
        rc = self.wait(timeout or (10 * TF + 2))
        if self in _LIVE:
            _LIVE.remove(self)
        if check and rc != 0:
            raise AssertionError("proxy exited with code %s (expected 0)%s\n%s" % (
                rc, _signame(rc), self.describe()))
        return rc

    def stop(self, sig=signal.SIGTERM, timeout=None, check=True):
        """Signal the proxy and wait; with check, assert exit code 0."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        rc = self.wait(timeout or (10 * TF + 2))
        if self in _LIVE:
            _LIVE.remove(self)
        if check and rc != 0:
            raise AssertionError("proxy exited with code %s (expected 0)%s\n%s" % (
                rc, _signame(rc), self.describe()))
        return rc

    def kill(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self._close_files()
        if self in _LIVE:
            _LIVE.remove(self)

    def _close_files(self):
        for f in (getattr(self, "_out", None), getattr(self, "_err", None)):
            if f is not None and not f.closed:
                f.close()

    # -- diagnostics
    def rss(self):
        """VmRSS in bytes, or None if the process is gone."""
        try:
            with open("/proc/%d/status" % self.proc.pid) as f:
                for line in f:
                    if line.startswith("VmRSS:"):
                        return int(line.split()[1]) * 1024
        except OSError:
            return None
        return None

    def log(self, which="stderr", tail=None):
        path = self.stderr_path if which == "stderr" else self.stdout_path
        try:
            with open(path, "rb") as f:
                data = f.read()
        except OSError:
            return ""
        text = data.decode("utf-8", "replace")
        if tail:
            lines = text.splitlines()
            if len(lines) > tail:
                text = "[... %d lines omitted ...]\n" % (len(lines) - tail) + \
                    "\n".join(lines[-tail:])
        return text

    def describe(self, tail=150):
        rc = self.proc.poll() if self.proc else None
        return ("---- %s: %s\n---- exit: %s%s\n---- stdout (tail):\n%s\n---- stderr (tail):\n%s\n"
                "---- end %s" % (self.name, " ".join(self.args), rc, _signame(rc),
                                 self.log("stdout", 40), self.log("stderr", tail), self.name))


def _signame(rc):
    if rc is not None and rc < 0:
        try:
            return " (killed by %s)" % signal.Signals(-rc).name
        except ValueError:
            return ""
    return ""


_LIVE = []


def _kill_leftovers():
    for p in list(_LIVE):
        p.kill()


atexit.register(_kill_leftovers)


def run_binary(args, timeout=None, env=None):
    """Run the binary to completion (for --version, --mode validate, ...)."""
    return subprocess.run([BINARY] + list(args), stdin=subprocess.DEVNULL,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          timeout=timeout or 20 * TF, env=env)


# --------------------------------------------------------------------------
# Scriptable upstream


PATTERN = bytes((i * 7 + 3) & 0xFF for i in range(1 << 16)) * 16  # 1 MiB


def pattern_bytes(n, offset=0):
    """n bytes of the test pattern (period 64 KiB) starting at offset."""
    out = bytearray()
    o = offset % (1 << 16)
    while len(out) < n:
        take = min(n - len(out), len(PATTERN) - o)
        out += PATTERN[o:o + take]
        o = 0
    return bytes(out)


class UpstreamRequest:
    def __init__(self, method, target, version, headers, conn_id, bs):
        self.method = method
        self.target = target
        self.version = version
        u = urllib.parse.urlsplit(target)
        self.path = u.path
        self.query = dict(urllib.parse.parse_qsl(u.query))
        self.headers = headers
        self.conn_id = conn_id
        self.bs = bs
        self.body = b""
        self.body_len = 0
        self.body_read = False
        self.body_done = threading.Event()     # set once read_body has the whole body
        self.trailers = Headers()
        self.arrived = time.monotonic()

    def wait_body(self, timeout=None):
        """The body, once the handler (another thread) has read all of it."""
        if not self.body_done.wait(timeout or 10 * TF):
            raise TimeoutError("request body of %s not read" % self.target)
        return self.body

    def read_body(self, store_limit=1 << 20):
        """Read the whole request body; stores up to store_limit bytes."""
        if self.body_read:
            return self.body
        self.body_read = True
        te = (self.headers.get("transfer-encoding") or "").lower()
        cl = self.headers.get("content-length")
        scratch = memoryview(bytearray(1 << 20))
        parts = []
        stored = 0
        if "chunked" in te:
            while True:
                line = self.bs.read_line()
                size = int(line.split(b";")[0].strip(), 16)
                if size == 0:
                    break
                if stored + size <= store_limit:
                    parts.append(self.bs.read_exact(size))
                    stored += size
                else:
                    self.bs.discard_exact(size, scratch)
                self.body_len += size
                self.bs.read_exact(2)
            while True:
                line = self.bs.read_line()
                if not line:
                    break
                self.trailers.extend(parse_headers([line]))
        elif cl is not None:
            n = int(cl)
            if n <= store_limit:
                parts.append(self.bs.read_exact(n))
            else:
                self.bs.discard_exact(n, scratch)
            self.body_len = n
        self.body = b"".join(parts)
        self.body_done.set()
        return self.body

    def summary(self):
        return {"method": self.method, "path": self.path, "target": self.target,
                "version": self.version, "headers": [list(h) for h in self.headers],
                "body": self.body.decode("latin-1"), "body_len": self.body_len,
                "trailers": [list(h) for h in self.trailers], "conn_id": self.conn_id}


class Responder:
    """Writes a response on an upstream connection."""

    def __init__(self, upstream, sock, req):
        self.up = upstream
        self.sock = sock
        self.req = req
        self.close_after = False

    def raw(self, data):
        self.sock.sendall(data)
        self.up._add_sent(len(data))

    def head(self, status, headers, reason=None, body=b""):
        reason = reason or _REASONS.get(status, "Status")
        hdrs = [("x-upstream-name", self.up.name)] + list(headers)
        if self.close_after:
            hdrs.append(("Connection", "close"))
        data = "HTTP/1.1 %d %s\r\n" % (status, reason)
        data += "".join("%s: %s\r\n" % kv for kv in hdrs) + "\r\n"
        self.raw(data.encode("latin-1") + body)

    def send(self, status, body=b"", headers=(), content_type="text/plain"):
        if isinstance(body, str):
            body = body.encode()
        hdrs = [("Content-Type", content_type), ("Content-Length", str(len(body)))] + list(headers)
        self.head(status, hdrs, body=b"" if self.req.method == "HEAD" else body)

    def reset(self):
        """Abort the connection with a TCP RST (SO_LINGER 0)."""
        import struct
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.sock.close()
        self.close_after = True
        self.aborted = True


_REASONS = {100: "Continue", 103: "Early Hints", 200: "OK", 201: "Created", 204: "No Content",
            400: "Bad Request", 404: "Not Found", 500: "Internal Server Error",
            502: "Bad Gateway", 503: "Service Unavailable", 504: "Gateway Timeout"}


def echo_handler(req, resp):
    """Default scriptable behaviour, driven by query parameters:

      status=N        response status (default 200)
      body=TEXT       literal body instead of the JSON echo
      size=N          body of N generated bytes (test pattern), streamed
      chunked=1       chunked response encoding
      trailers=1      (with chunked) send trailers x-trailer-one/x-trailer-two
      hints=1         send "103 Early Hints" before the final response
      delay=SECONDS   wait before responding (after reading the request body)
      reset=N         send headers (Content-Length 10 MiB) + N body bytes, then RST
      close=1         Connection: close and close after the response
    Without body/size the body is a JSON echo of the request.
    """
    q = req.query
    req.read_body()
    req_summary = req.summary()
    if "delay" in q:
        time.sleep(float(q["delay"]))
    if q.get("close") == "1":
        resp.close_after = True
    if q.get("hints") == "1":
        resp.raw(b"HTTP/1.1 103 Early Hints\r\nLink: </style.css>; rel=preload\r\n\r\n")
    status = int(q.get("status", "200"))
    if "reset" in q:
        n = int(q["reset"])
        resp.head(status, [("Content-Type", "application/octet-stream"),
                           ("Content-Length", str(10 << 20))])
        resp.raw(pattern_bytes(n))
        resp.reset()
        return
    chunked = q.get("chunked") == "1"
    if "size" in q:
        size = int(q["size"])
        hdrs = [("Content-Type", "application/octet-stream")]
        hdrs.append(("Transfer-Encoding", "chunked") if chunked else ("Content-Length", str(size)))
        resp.head(status, hdrs)
        if req.method == "HEAD":
            return
        sent = 0
        block = 64 * 1024
        while sent < size:
            n = min(block, size - sent)
            off = sent % len(PATTERN)
            data = PATTERN[off:off + n] if off + n <= len(PATTERN) else pattern_bytes(n, sent)
            if chunked:
                resp.raw(b"%x\r\n" % n + data + b"\r\n")
            else:
                resp.raw(data)
            sent += n
        if chunked:
            resp.raw(b"0\r\n\r\n")
        return
    if "body" in q:
        body = q["body"].encode()
        ctype = "text/plain"
    else:
        body = json.dumps(dict(req_summary, upstream=resp.up.name)).encode()
        ctype = "application/json"
    if chunked:
        hdrs = [("Content-Type", ctype), ("Transfer-Encoding", "chunked")]
        trailers = q.get("trailers") == "1"
        if trailers:
            hdrs.append(("Trailer", "x-trailer-one, x-trailer-two"))
        resp.head(status, hdrs)
        if req.method == "HEAD":
            return
        pieces = [body[:len(body) // 3], body[len(body) // 3:2 * len(body) // 3],
                  body[2 * len(body) // 3:]]
        out = b"".join(b"%x\r\n%s\r\n" % (len(p), p) for p in pieces if p)
        out += b"0\r\n"
        if trailers:
            out += b"x-trailer-one: t1\r\nx-trailer-two: t2\r\n"
        out += b"\r\n"
        resp.raw(out)
        return
    resp.send(status, body, content_type=ctype)


class Upstream:
    """Threaded HTTP/1.1 upstream on 127.0.0.1 (and optionally ::1, same port).

    handler(req: UpstreamRequest, resp: Responder) is called per request;
    default is echo_handler.  Counts accepted connections and records requests.
    """

    def __init__(self, name="up", handler=None, also_ipv6=False):
        self.name = name
        self.handler = handler or echo_handler
        self.lock = threading.Condition()
        self.connections = 0
        self.requests = []  # UpstreamRequest (body capped)
        self.bytes_sent = 0
        self.errors = []
        self._conns = set()
        self._closed = False
        self.socks = []
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind((LOCAL, 0))
        s.listen(512)
        self.port = s.getsockname()[1]
        self.socks.append(s)
        if also_ipv6 and socket.has_ipv6:
            try:
                s6 = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
                s6.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
                s6.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                s6.bind(("::1", self.port))
                s6.listen(512)
                self.socks.append(s6)
            except OSError:
                pass
        for ls in self.socks:
            threading.Thread(target=self._accept_loop, args=(ls,), daemon=True).start()

    def _add_sent(self, n):
        with self.lock:
            self.bytes_sent += n

    def _accept_loop(self, ls):
        while True:
            try:
                conn, _ = ls.accept()
            except OSError:
                return
            try:
                conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            except OSError:
                pass
            with self.lock:
                if self._closed:
                    conn.close()
                    return
                self.connections += 1
                cid = self.connections
                self._conns.add(conn)
            threading.Thread(target=self._serve, args=(conn, cid), daemon=True).start()

    def _serve(self, conn, cid):
        bs = BufSock(conn)
        try:
            while True:
                try:
                    head = bs.read_until(b"\r\n\r\n", limit=1 << 22)
                except Incomplete:
                    return
                lines = head[:-4].split(b"\r\n")
                parts = lines[0].decode("latin-1").split(" ")
                if len(parts) != 3:
                    conn.sendall(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n"
                                 b"Connection: close\r\n\r\n")
                    return
                req = UpstreamRequest(parts[0], parts[1], parts[2],
                                      Headers(parse_headers(lines[1:])), cid, bs)
                with self.lock:
                    self.requests.append(req)
                    self.lock.notify_all()
                if "100-continue" in (req.headers.get("expect") or "").lower():
                    conn.sendall(b"HTTP/1.1 100 Continue\r\n\r\n")
                resp = Responder(self, conn, req)
                self.handler(req, resp)
                if getattr(resp, "aborted", False):
                    return
                conn_hdr = (req.headers.get("connection") or "").lower()
                if resp.close_after or "close" in conn_hdr or req.version == "HTTP/1.0":
                    return
        except (Incomplete, OSError, ValueError) as e:
            with self.lock:
                self.errors.append(repr(e))
        finally:
            with self.lock:
                self._conns.discard(conn)
            try:
                conn.close()
            except OSError:
                pass

    def wait_requests(self, n, timeout=None):
        deadline = time.monotonic() + (timeout or 10 * TF)
        with self.lock:
            while len(self.requests) < n:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError("upstream %s saw %d requests, wanted %d" % (
                        self.name, len(self.requests), n))
                self.lock.wait(left)
            return list(self.requests)

    def last_request(self):
        with self.lock:
            return self.requests[-1] if self.requests else None

    def close(self):
        with self.lock:
            self._closed = True
            conns = list(self._conns)
        for s in self.socks:
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            s.close()
        for c in conns:
            try:
                c.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


# --------------------------------------------------------------------------
# RSS monitor


class RssMonitor:
    """Samples the proxy's VmRSS every `interval` seconds in a thread."""

    def __init__(self, proxy, interval=0.02):
        self.proxy = proxy
        self.interval = interval
        self.max_rss = 0
        self.samples = 0
        self._stop = threading.Event()
        self._t = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        while not self._stop.is_set():
            r = self.proxy.rss()
            if r is not None:
                self.samples += 1
                self.max_rss = max(self.max_rss, r)
            self._stop.wait(self.interval)

    def __enter__(self):
        self._t.start()
        return self

    def __exit__(self, *a):
        self._stop.set()
        self._t.join()


# --------------------------------------------------------------------------
# unittest glue


class ProxyTestCase(unittest.TestCase):
    """TestCase that prints the logs of every proxy started during a failing
    test (and of the class-level proxies), and checks the class proxy is
    still alive after each test."""

    maxDiff = 4000

    def run(self, result=None):
        if result is None:
            return super().run(result)
        before = len(result.failures) + len(result.errors)
        self._test_proxies = []
        out = super().run(result)
        after = len(result.failures) + len(result.errors)
        if after > before:
            seen = set()
            for p in list(self._test_proxies) + list(getattr(type(self), "proxies", [])):
                if id(p) in seen or p.proc is None:
                    continue
                seen.add(id(p))
                sys.stderr.write("\n==== logs for failed test %s ====\n%s\n" % (
                    self.id(), p.describe()))
        return out

    def start_proxy(self, config=None, **kw):
        """Start a proxy for this test only; stopped (exit 0 asserted) at cleanup."""
        p = Proxy(config, **kw)
        self._test_proxies.append(p)
        p.start()
        self.addCleanup(self._stop_test_proxy, p)
        return p

    def _stop_test_proxy(self, p):
        if p.proc is not None and p.returncode is None and p.proc.poll() is None:
            p.stop()
        elif p.proc is not None and p.returncode is None:
            rc = p.proc.poll()
            p._close_files()
            if p in _LIVE:
                _LIVE.remove(p)
            if rc != 0:
                raise AssertionError("proxy died during the test with code %s%s" % (
                    rc, _signame(rc)))

    def start_upstream(self, name="up", handler=None, **kw):
        u = Upstream(name, handler, **kw)
        self.addCleanup(u.close)
        return u

    def assertProxyAlive(self, proxy):
        if not proxy.alive():
            raise AssertionError("proxy died: exit %s%s" % (
                proxy.proc.poll(), _signame(proxy.proc.poll())))


class ClassProxyTestCase(ProxyTestCase):
    """One proxy for the whole class: subclasses implement make_config(cls)
    (returning a bootstrap) after creating upstreams in cls.setup_upstreams()."""

    proxies = []
    proxy_kwargs = {}           # extra Proxy() arguments, e.g. concurrency

    @classmethod
    def setUpClass(cls):
        cls.upstreams = []
        cls.proxies = []
        cls.port = free_port()
        cls.admin_port = free_port()
        cls.setup_upstreams()
        cls.proxy = Proxy(cls.make_config(), name=cls.__name__, **cls.proxy_kwargs)
        cls.proxies.append(cls.proxy)
        try:
            cls.proxy.start()
        except Exception:
            sys.stderr.write(cls.proxy.describe() + "\n")
            cls.proxy.kill()
            for u in cls.upstreams:
                u.close()
            raise

    @classmethod
    def setup_upstreams(cls):
        pass

    @classmethod
    def add_upstream(cls, name, handler=None, **kw):
        u = Upstream(name, handler, **kw)
        cls.upstreams.append(u)
        return u

    @classmethod
    def tearDownClass(cls):
        try:
            if cls.proxy.alive():
                rc = cls.proxy.stop(check=False)
            else:
                cls.proxy._close_files()
                rc = cls.proxy.proc.poll()
            if rc != 0:
                sys.stderr.write("\n==== class proxy exit %s%s ====\n%s\n" % (
                    rc, _signame(rc), cls.proxy.describe()))
                raise AssertionError("class proxy %s exited with %s%s (expected 0)" % (
                    cls.__name__, rc, _signame(rc)))
        finally:
            for u in cls.upstreams:
                u.close()

    def tearDown(self):
        # A crash during this test must be attributed to this test.
        if not self.proxy.alive():
            rc = self.proxy.proc.poll()
            raise AssertionError("proxy died during this test: exit %s%s" % (rc, _signame(rc)))


def require_binary():
    if not os.path.isfile(BINARY) or not os.access(BINARY, os.X_OK):
        sys.stderr.write("pilotfish binary not found at %s (set PILOTFISH)\n" % BINARY)
        sys.exit(2)


def main():
    require_binary()
    unittest.main(verbosity=2)
