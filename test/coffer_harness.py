"""coffer_harness.py: starts a real cofferd in a temp dir on free loopback ports for end-to-end tests.

Python 3 standard library only. Typical use:

    with Coffer() as c:                      # writes config, makes a cert, starts, waits for greetings
        conn = c.connect("imap")             # raw line-oriented client
        conn.expect(rb"^\\* OK")
        m = c.imap()                         # imaplib.IMAP4 on the imap service

The binaries come from $COFFER_BIN (set by ctest); the source tree from $COFFER_SRC. Every instance
is torn down on exit (context manager and atexit): SIGTERM, wait, SIGKILL, then any process still
carrying this instance's config path is killed. The temp dir is removed unless $COFFER_KEEP_TMP is
set. When run as root, coffer.conf gets `user = nobody` (or a `coffertest` account made with
useradd) because cofferd refuses to run as root without a service user.
"""
import atexit
import errno
import imaplib
import os
import poplib
import pwd
import re
import shutil
import signal
import smtplib
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time
import unittest

HOST = "127.0.0.1"
HOSTNAME = "coffer.test"        # `hostname` in coffer.conf: appears in greetings
READY_TIMEOUT = 20.0            # bound on waiting for every port to greet
IO_TIMEOUT = 15.0               # default bound on one network read

GREETING = {"imap": rb"^\* OK", "pop3": rb"^\+OK", "lmtp": rb"^220 ",
            "sieve": rb'^"IMPLEMENTATION" ', "admin": rb"^OK coffer-admin "}
PROTOCOL_OF = {"imapd": "imap", "pop3d": "pop3", "lmtpd": "lmtp", "sieved": "sieve",
               "router": "router", "lmtproute": "lmtp", "admind": "admin",
               "imap-hibernate": None}   # None: no greeting to wait for

# (name, program, tls, unix socket?)  -- the services every instance gets by default
DEFAULT_SERVICES = [
    ("imap", "imapd", "starttls", False),
    ("imaps", "imapd", "implicit", False),
    ("pop3", "pop3d", "starttls", False),
    ("pop3s", "pop3d", "implicit", False),
    ("lmtp", "lmtpd", "starttls", False),
    ("lmtpunix", "lmtpd", "none", True),
]
# ManageSieve (sieved): not in every instance; tests that want it add it:
#     Coffer(services=DEFAULT_SERVICES + [SIEVE_SERVICE])
SIEVE_SERVICE = ("sieve", "sieved", "starttls", False)


def bin_dir():
    """The directory holding cofferd, imapd, pop3d, lmtpd, sieved: $COFFER_BIN, else ../build/bin."""
    d = os.environ.get("COFFER_BIN")
    if not d:
        d = os.path.join(src_dir(), "build", "bin")
    return os.path.abspath(d)


def src_dir():
    """The source tree: $COFFER_SRC, else the parent of this file's directory."""
    return os.path.abspath(os.environ.get("COFFER_SRC") or
                           os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))


def wait_for(pred, timeout, interval=0.05, what="condition"):
    """Call pred() until it returns a true value (which is returned) or timeout seconds pass
    (raises TimeoutError naming `what`). Exceptions from pred propagate."""
    deadline = time.monotonic() + timeout
    while True:
        v = pred()
        if v:
            return v
        if time.monotonic() >= deadline:
            raise TimeoutError("timed out after %.1fs waiting for %s" % (timeout, what))
        time.sleep(interval)


def run_coffer(c, *args, input=None, json_out=False):
    """(exit status, stdout bytes, stderr text) of `coffer -C conf [--json] ARGS`."""
    cmd = [os.path.join(c.bindir, "coffer"), "-C", c.conf_path]
    if json_out:
        cmd.append("--json")
    r = subprocess.run(cmd + list(args), input=input, stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, timeout=120, env=c.env())
    err = r.stderr.decode(errors="replace")
    if "Sanitizer" in err or "runtime error" in err:
        raise AssertionError("sanitizer report from coffer %s:\n%s" % (" ".join(args), err))
    return r.returncode, r.stdout, err


def free_port(host=HOST):
    """A TCP port on host that was free a moment ago (bind port 0, close). Callers must cope
    with a race: Coffer.start() retries with fresh ports when cofferd exits 3."""
    # never the same port twice in one test process: two services of one config given the
    # same port make cofferd refuse the config (exit 2), which start() does not retry
    for _ in range(100):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.bind((host, 0))
            port = s.getsockname()[1]
        if port not in _ports_given:
            break
    _ports_given.add(port)
    return port


_ports_given = set()


def _path_world_executable(path):
    """True when every directory on the way to path is world-searchable (an unprivileged
    service user can exec binaries there)."""
    p = os.path.abspath(path)
    while True:
        try:
            if not os.stat(p).st_mode & 0o001:
                return False
        except OSError:
            return False
        parent = os.path.dirname(p)
        if parent == p:
            return True
        p = parent


def service_user():
    """The unprivileged account for `user =` when running as root, else None. Uses nobody;
    falls back to creating `coffertest` with useradd when nobody is missing or is uid 0."""
    if os.geteuid() != 0:
        return None
    for name in ("nobody", "coffertest"):
        try:
            pw = pwd.getpwnam(name)
        except KeyError:
            continue
        if pw.pw_uid != 0:
            return name
    subprocess.run(["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin",
                    "coffertest"], check=True, stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL, timeout=30)
    return "coffertest"


# ---------------------------------------------------------------- /proc helpers

def proc_stat(pid):
    """(comm, state, ppid, pgrp) of pid from /proc/PID/stat, or None if it is gone."""
    try:
        with open("/proc/%d/stat" % pid, "rb") as f:
            data = f.read().decode("utf-8", "replace")
    except OSError:
        return None
    lp, rp = data.find("("), data.rfind(")")
    comm = data[lp + 1:rp]
    rest = data[rp + 2:].split()
    return comm, rest[0], int(rest[1]), int(rest[2])


def proc_cmdline(pid):
    """argv of pid as a list of str ([] when gone or a zombie)."""
    try:
        with open("/proc/%d/cmdline" % pid, "rb") as f:
            raw = f.read()
    except OSError:
        return []
    return [a.decode("utf-8", "replace") for a in raw.split(b"\0") if a]


def all_pids():
    return [int(d) for d in os.listdir("/proc") if d.isdigit()]


def pid_alive(pid):
    """True when pid exists and is not a zombie."""
    st = proc_stat(pid)
    return st is not None and st[1] != "Z"


def socket_inodes_of(pid):
    """Inodes of the sockets pid holds open."""
    out = set()
    try:
        names = os.listdir("/proc/%d/fd" % pid)
    except OSError:
        return out
    for n in names:
        try:
            link = os.readlink("/proc/%d/fd/%s" % (pid, n))
        except OSError:
            continue
        m = re.match(r"socket:\[(\d+)\]$", link)
        if m:
            out.add(int(m.group(1)))
    return out


def tcp_sockets():
    """(local port, remote port, state, inode) of every TCP socket in /proc/net/tcp and tcp6
    (state as the kernel writes it: "01" established, "0A" listening)."""
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(table) as f:
                lines = f.readlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            yield (int(fields[1].rsplit(":", 1)[1], 16), int(fields[2].rsplit(":", 1)[1], 16),
                   fields[3], int(fields[9]))


def server_socket_inode(client_sock):
    """Inode of the server-side end of a loopback TCP connection whose client end is
    client_sock; None when not found."""
    lport = client_sock.getsockname()[1]
    rport = client_sock.getpeername()[1]
    for local, remote, _state, inode in tcp_sockets():
        if local == rport and remote == lport and inode:
            return inode
    return None


class Worker:
    """A child process of the master: pid, program (basename of argv[0]) and service (-S)."""

    def __init__(self, pid, program, service, state):
        self.pid, self.program, self.service, self.state = pid, program, service, state

    def __repr__(self):
        return "Worker(pid=%d, program=%s, service=%s, state=%s)" % (
            self.pid, self.program, self.service, self.state)


# ---------------------------------------------------------------- raw connections

class Conn:
    """A line-oriented client over a socket (TCP, UNIX, or TLS), with bounded reads.

    readline() returns bytes including the line end; raises EOFError at end of stream and
    socket.timeout when nothing complete arrives in time. expect() reads lines until one matches
    a regex and returns the match, failing with every line seen."""

    def __init__(self, sock, timeout=IO_TIMEOUT):
        self.sock = sock
        self.timeout = timeout
        self.buf = b""
        self.lines = []          # every line read, for failure messages
        self.sock.settimeout(timeout)

    def send(self, data):
        if isinstance(data, str):
            data = data.encode()
        self.sock.sendall(data)

    def cmd(self, line):
        """Send line plus CRLF."""
        self.send((line.encode() if isinstance(line, str) else line) + b"\r\n")

    def _fill(self, deadline):
        left = deadline - time.monotonic()
        if left <= 0:
            raise socket.timeout("read timed out; got so far: %r" % self.buf[:200])
        self.sock.settimeout(left)
        data = self.sock.recv(65536)
        if not data:
            raise EOFError("connection closed by server; partial line %r" % self.buf[:200])
        self.buf += data

    def readline(self, timeout=None):
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        while b"\n" not in self.buf:
            self._fill(deadline)
        line, self.buf = self.buf.split(b"\n", 1)
        line += b"\n"
        self.lines.append(line)
        return line

    def read_exact(self, n, timeout=None):
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        while len(self.buf) < n:
            self._fill(deadline)
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def expect(self, pattern, timeout=None):
        """Read lines until one matches pattern (bytes or str regex, searched); return the
        match. Raises AssertionError (with the lines seen) on EOF or timeout."""
        if isinstance(pattern, str):
            pattern = pattern.encode()
        rx = re.compile(pattern)
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        seen = []
        while True:
            try:
                line = self.readline(max(0.01, deadline - time.monotonic()))
            except (EOFError, socket.timeout, OSError) as e:
                raise AssertionError("expected %r, got %r then %s: %s" % (
                    pattern, seen, type(e).__name__, e))
            seen.append(line)
            m = rx.search(line)
            if m:
                return m

    def read_tagged(self, tag, timeout=None):
        """IMAP: lines up to and including the one starting with `tag `; returns
        (tagged_line, [untagged lines]) as bytes."""
        tagb = (tag.encode() if isinstance(tag, str) else tag) + b" "
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        before = []
        while True:
            try:
                line = self.readline(max(0.01, deadline - time.monotonic()))
            except (EOFError, socket.timeout, OSError) as e:
                raise AssertionError("waiting for tag %r, got %r then %s: %s" % (
                    tagb, before, type(e).__name__, e))
            if line.startswith(tagb):
                return line, before
            before.append(line)

    def imap(self, tag, text, timeout=None):
        """Send `tag text` and return (tagged_line, untagged_lines)."""
        self.cmd("%s %s" % (tag, text))
        return self.read_tagged(tag, timeout)

    def read_multiline(self, timeout=None):
        """POP3: lines after a +OK up to the terminating '.' (dot-unstuffed, no CRLF)."""
        out = []
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        while True:
            line = self.readline(max(0.01, deadline - time.monotonic())).rstrip(b"\r\n")
            if line == b".":
                return out
            out.append(line[1:] if line.startswith(b"..") else line)

    def read_smtp_reply(self, timeout=None):
        """LMTP/SMTP: a (possibly multi-line) reply; returns (code, [text lines])."""
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        texts = []
        while True:
            line = self.readline(max(0.01, deadline - time.monotonic())).rstrip(b"\r\n")
            if len(line) < 3 or not line[:3].isdigit():
                raise AssertionError("bad SMTP reply line %r" % line)
            texts.append(line[4:])
            if len(line) == 3 or line[3:4] == b" ":
                return int(line[:3]), texts

    def starttls(self, context, server_hostname="localhost"):
        """Upgrade in place. Fails if the server sent bytes we have not read (they would be
        plaintext injected before the handshake)."""
        if self.buf:
            raise AssertionError("unread plaintext before TLS handshake: %r" % self.buf)
        self.sock.settimeout(self.timeout)
        self.sock = context.wrap_socket(self.sock, server_hostname=server_hostname)

    def at_eof(self, timeout=None):
        """True when the server closes the connection (EOF or reset) within timeout; False
        if data arrives instead (the data is kept); raises socket.timeout on silence."""
        if self.buf:
            return False
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        try:
            self._fill(deadline)
        except EOFError:
            return True
        except (ConnectionResetError, BrokenPipeError):
            return True
        except ssl.SSLError:
            return True
        return False

    def wait_eof(self, timeout=None):
        """Read and discard everything until the server closes; True on EOF (or reset)
        within timeout, False on timeout."""
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        self.buf = b""
        while True:
            try:
                self._fill(deadline)
                self.buf = b""
            except (EOFError, ConnectionResetError, BrokenPipeError, ssl.SSLError):
                return True
            except (socket.timeout, TimeoutError):
                return False

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


# ---------------------------------------------------------------- the server instance

_live = set()
_live_lock = threading.Lock()


def _cleanup_all():
    with _live_lock:
        items = list(_live)
    for c in items:
        try:
            c.close()
        except Exception as e:  # best effort at interpreter exit
            sys.stderr.write("coffer_harness: cleanup failed: %s\n" % e)


atexit.register(_cleanup_all)


def _sigterm_exit(signum, frame):
    raise SystemExit(128 + signum)      # so atexit runs when ctest or a user stops us


if threading.current_thread() is threading.main_thread() and \
        signal.getsignal(signal.SIGTERM) in (signal.SIG_DFL, None):
    signal.signal(signal.SIGTERM, _sigterm_exit)


class StartError(Exception):
    """cofferd did not come up: .rc is its exit code (None if it was still running)."""

    def __init__(self, msg, rc=None):
        super().__init__(msg)
        self.rc = rc


class Coffer:
    """One cofferd instance in its own temp dir.

    services: a list of (name, program, tls, unix) like DEFAULT_SERVICES; per-service settings
    can then be changed with set_service(). global_settings: extra `key = value` lines.
    Attributes: tmp, conf_path, configdir, log_path, cert, key, ports {service: port},
    unix_paths {service: path}, proc (the Popen of the master)."""

    def __init__(self, services=None, global_settings=None, service_settings=None,
                 log_level="info", shutdown_timeout=5):
        self.bindir = bin_dir()
        self.cofferd = os.path.join(self.bindir, "cofferd")
        self.user = service_user()
        self.tmp = tempfile.mkdtemp(prefix="coffer-e2e-")
        self.conf_path = os.path.join(self.tmp, "coffer.conf")
        self.partitions_path = os.path.join(self.tmp, "partitions.conf")
        self.configdir = os.path.join(self.tmp, "conf")
        self.spool = os.path.join(self.tmp, "spool", "default")
        self.log_path = os.path.join(self.tmp, "cofferd.log")
        self.cert = os.path.join(self.tmp, "cert.pem")
        self.key = os.path.join(self.tmp, "key.pem")
        self.proc = None
        self.closed = False
        self.final_log_tail = ""
        self.final_sanitizer_reports = []
        self._logf = None
        self.seen_pids = set()
        self.globals = {
            "configdir": self.configdir,
            "partitions": self.partitions_path,
            "log_target": "stderr",
            "log_level": log_level,
            "hostname": HOSTNAME,
            "tls_cert": self.cert,
            "tls_key": self.key,
            "shutdown_timeout": "%ds" % shutdown_timeout,
        }
        if self.user:
            self.globals["user"] = self.user
        self.globals.update(global_settings or {})
        self.services = {}          # name -> dict of settings (ordered)
        self.extra_config = ""      # text appended to coffer.conf ([backend NAME] sections)
        self.unix_paths = {}
        self.ports = {}
        for name, program, tls, unix in (services or DEFAULT_SERVICES):
            self.add_service(name, program, tls, unix, write=False)
        for name, kv in (service_settings or {}).items():
            self.services[name].update(kv)
        with _live_lock:
            _live.add(self)
        os.makedirs(self.configdir)
        os.makedirs(self.spool)
        with open(self.partitions_path, "w") as f:
            f.write("# written by coffer_harness\ndefault %s\n" % self.spool)
        self.make_cert()
        self.write_config()

    # ---- configuration

    def add_service(self, name, program, tls="starttls", unix=False, write=True, **settings):
        """Add a [service NAME] with a fresh loopback port (or a UNIX socket in tmp)."""
        if unix:
            path = os.path.join(self.tmp, name + ".sock")
            self.unix_paths[name] = path
            listen = path
        else:
            self.ports[name] = free_port()
            listen = "%s:%d" % (HOST, self.ports[name])
        self.services[name] = {"program": program, "listen": listen, "tls": tls,
                               "prefork": 1}
        self.services[name].update(settings)
        if write:
            self.write_config()

    def remove_service(self, name, write=True):
        del self.services[name]
        self.ports.pop(name, None)
        self.unix_paths.pop(name, None)
        if write:
            self.write_config()

    def set_service(self, name, write=True, **settings):
        self.services[name].update(settings)
        if write:
            self.write_config()

    def protocol(self, service):
        return PROTOCOL_OF[os.path.basename(self.services[service]["program"])]

    def is_implicit(self, service):
        return self.services[service].get("tls") == "implicit"

    def config_text(self):
        out = ["# coffer.conf written by test/coffer_harness.py"]
        for k, v in self.globals.items():
            out.append("%s = %s" % (k, v))
        for name, kv in self.services.items():
            out.append("")
            out.append("[service %s]" % name)
            for k, v in kv.items():
                out.append("%s = %s" % (k, v))
        return "\n".join(out) + "\n" + self.extra_config

    def write_config(self, text=None):
        """Write coffer.conf (atomically) from the current settings, or the given text."""
        tmp = self.conf_path + ".new"
        with open(tmp, "w") as f:
            f.write(self.config_text() if text is None else text)
        os.chmod(tmp, 0o644)
        os.rename(tmp, self.conf_path)

    def config_line_of(self, needle):
        """1-based line number of the first line of coffer.conf containing needle."""
        with open(self.conf_path) as f:
            for i, line in enumerate(f, 1):
                if needle in line:
                    return i
        return None

    def make_cert(self, kind="ec"):
        script = os.path.join(src_dir(), "scripts", "gen-cert.sh")
        r = subprocess.run(["sh", script, "-t", kind, self.cert, self.key],
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=60)
        if r.returncode != 0:
            raise RuntimeError("gen-cert.sh failed: %s" % r.stdout.decode(errors="replace"))

    def _chown_tree(self):
        if not self.user:
            return
        pw = pwd.getpwnam(self.user)
        for root, dirs, files in os.walk(self.tmp):
            os.chown(root, pw.pw_uid, pw.pw_gid)
            for n in dirs + files:
                try:
                    os.chown(os.path.join(root, n), pw.pw_uid, pw.pw_gid, follow_symlinks=False)
                except FileNotFoundError:
                    pass

    def ssl_context(self):
        """A client context that trusts only the test certificate and checks host names."""
        ctx = ssl.create_default_context(cafile=self.cert)
        return ctx

    # ---- process control

    def env(self):
        e = dict(os.environ)
        e.setdefault("ASAN_OPTIONS", "abort_on_error=0:detect_leaks=1")
        return e

    def spawn(self, args=("-f",), stdout=None):
        """Start cofferd -C conf ARGS in a new session (its own process group), logging to
        the log file (or stdout, a file object). Returns the Popen; does not wait."""
        self._chown_tree()
        if self._logf is None:
            self._logf = open(self.log_path, "ab", buffering=0)
        out = stdout if stdout is not None else self._logf
        return subprocess.Popen([self.cofferd, "-C", self.conf_path] + list(args),
                                stdin=subprocess.DEVNULL, stdout=out, stderr=out,
                                start_new_session=True, env=self.env(), cwd=self.tmp)

    def run_cofferd(self, args=("-f",), timeout=30):
        """Run cofferd -C conf ARGS to completion; returns (exit code, combined output str).
        Raises subprocess.TimeoutExpired (after killing it) when it does not exit in time."""
        self._chown_tree()
        p = subprocess.Popen([self.cofferd, "-C", self.conf_path] + list(args),
                             stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                             stderr=subprocess.STDOUT, start_new_session=True,
                             env=self.env(), cwd=self.tmp)
        try:
            out, _ = p.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            self._kill_group(p.pid)
            p.communicate()
            raise
        return p.returncode, out.decode("utf-8", "replace")

    def start(self, wait=True, attempts=3):
        """Start the master and (if wait) wait until every service greets. On a port race
        (cofferd exits 3) picks fresh ports and retries. Raises StartError."""
        for attempt in range(attempts):
            self.log_mark_start = self.log_size()
            self.proc = self.spawn()
            if not wait:
                return self
            try:
                self.wait_ready()
                return self
            except StartError as e:
                if e.rc == 3 and attempt + 1 < attempts:
                    for name in list(self.ports):
                        self.ports[name] = free_port()
                        self.services[name]["listen"] = "%s:%d" % (HOST, self.ports[name])
                    self.write_config()
                    continue
                self.stop_quietly()
                raise
        return self

    @property
    def pid(self):
        return self.proc.pid if self.proc else None

    def running(self):
        return self.proc is not None and self.proc.poll() is None

    def wait_ready(self, timeout=READY_TIMEOUT, services=None):
        """Wait until each service (default: all) answers with its greeting; raises
        StartError if the master exits or the bound passes."""
        deadline = time.monotonic() + timeout
        pending = [s for s in (services or self.services) if self.protocol(s) is not None]
        last_err = None
        while pending:
            if self.proc is not None and self.proc.poll() is not None:
                raise StartError("cofferd exited %d during startup; log:\n%s" % (
                    self.proc.returncode, self.log_tail()), self.proc.returncode)
            name = pending[0]
            try:
                self.greet(name, timeout=max(0.5, min(5.0, deadline - time.monotonic())))
                pending.pop(0)
                continue
            except (OSError, EOFError, AssertionError, ssl.SSLError) as e:
                last_err = e
            if time.monotonic() >= deadline:
                raise StartError("services %s did not greet within %.0fs (last error: %s); "
                                 "log:\n%s" % (pending, timeout, last_err, self.log_tail()))
            time.sleep(0.1)

    def greet(self, service, timeout=IO_TIMEOUT):
        """Connect, read the greeting, say goodbye. Returns the greeting line (bytes)."""
        proto = self.protocol(service)
        if proto == "router":
            # the router does not greet (its clients speak first): a request it refuses
            with self.connect(service, timeout=timeout) as c:
                c.send(b"\r\n\r\n")
                line = c.readline()
                if not line.startswith(b"HTTP/1.0 400"):
                    raise AssertionError("%s answered %r" % (service, line))
                return line
        with self.connect(service, timeout=timeout) as c:
            line = c.readline()
            if not re.match(GREETING[proto], line):
                raise AssertionError("%s greeted with %r" % (service, line))
            try:
                c.cmd({"imap": "z LOGOUT", "pop3": "QUIT", "lmtp": "QUIT", "sieve": "LOGOUT",
                       "admin": "QUIT"}[proto])
                c.wait_eof(timeout=timeout)
            except (OSError, socket.timeout, ssl.SSLError):
                pass
            return line

    def send_signal(self, sig):
        os.kill(self.proc.pid, sig)

    def reload(self):
        """SIGHUP the master (the config should already be rewritten)."""
        self.send_signal(signal.SIGHUP)

    def stop(self, sig=signal.SIGTERM, timeout=None):
        """Send sig and wait for the master to exit; returns its exit code, or None if it
        had to be killed after timeout (default shutdown_timeout + 15 s)."""
        if self.proc is None:
            return None
        if timeout is None:
            timeout = self.shutdown_timeout() + 15
        if self.proc.poll() is None:
            try:
                os.kill(self.proc.pid, sig)
            except ProcessLookupError:
                pass
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self._kill_group(self.proc.pid)
                self.proc.wait(10)
                return None
        return self.proc.returncode

    def stop_quietly(self):
        try:
            self.stop()
        except Exception:
            pass
        if self.proc is not None:
            self._kill_group(self.proc.pid)

    def shutdown_timeout(self):
        m = re.match(r"(\d+)", str(self.globals.get("shutdown_timeout", "10")))
        return int(m.group(1)) if m else 10

    def _kill_group(self, pgid):
        try:
            os.killpg(pgid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass

    def instance_pids(self):
        """Live (non-zombie) processes that belong to this instance: in the master's
        process group, or carrying this instance's config path on their command line."""
        out = set()
        me = os.getpid()
        for pid in all_pids():
            if pid == me:
                continue
            st = proc_stat(pid)
            if st is None or st[1] == "Z":
                continue
            if self.proc is not None and st[3] == self.proc.pid:
                out.add(pid)
            elif self.conf_path in proc_cmdline(pid):
                out.add(pid)
        return out

    def kill_leftovers(self):
        """SIGKILL every process of this instance; returns the pids that were found."""
        left = self.instance_pids()
        if self.proc is not None:
            self._kill_group(self.proc.pid)
        for pid in left:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        return left

    def close(self):
        """Tear everything down. Safe to call more than once."""
        if self.closed:
            return
        self.closed = True
        try:
            if self.proc is not None:
                self.stop()
        finally:
            self.kill_leftovers()
            if self.proc is not None:
                try:
                    self.proc.wait(5)
                except subprocess.TimeoutExpired:
                    pass
            if self._logf:
                self._logf.close()
                self._logf = None
            self.final_log_tail = self.log_tail(80)
            self.final_sanitizer_reports = self.sanitizer_reports()
            with _live_lock:
                _live.discard(self)
            if os.environ.get("COFFER_KEEP_TMP"):
                sys.stderr.write("coffer_harness: keeping %s\n" % self.tmp)
            else:
                shutil.rmtree(self.tmp, ignore_errors=True)

    def __enter__(self):
        if self.proc is None:
            self.start()
        return self

    def __exit__(self, *exc):
        self.close()

    # ---- workers and status

    def workers(self, service=None, program=None):
        """Live children of the master that are service workers (argv has -S SERVICE),
        optionally only those of one service or program. Zygotes (argv has -Z) are not
        workers: see zygotes()."""
        return self._children(service, program, zygotes=False)

    def zygotes(self, service=None, program=None):
        """Live children of the master that are service zygotes (argv has -S SERVICE -Z):
        the process each service's workers are forked from."""
        return self._children(service, program, zygotes=True)

    def _children(self, service, program, zygotes):
        out = []
        if self.proc is None:
            return out
        for pid in all_pids():
            st = proc_stat(pid)
            if st is None or st[2] != self.proc.pid or st[1] == "Z":
                continue
            argv = proc_cmdline(pid)
            if "-S" not in argv or argv.index("-S") + 1 >= len(argv):
                continue            # forked but not yet exec'd, or not a worker
            if ("-Z" in argv) != zygotes:
                continue
            w = Worker(pid, os.path.basename(argv[0]), argv[argv.index("-S") + 1], st[1])
            if service is not None and w.service != service:
                continue
            if program is not None and w.program != program:
                continue
            self.seen_pids.add(pid)
            out.append(w)
        return out

    def worker_for(self, conn):
        """The worker process serving a Conn (or socket) over TCP, by socket inode; None."""
        sock = conn.sock if isinstance(conn, Conn) else conn
        inode = server_socket_inode(sock)
        if inode is None:
            return None
        for w in self.workers():
            if inode in socket_inodes_of(w.pid):
                return w
        return None

    def status_path(self):
        return os.path.join(self.configdir, "cofferd.status")

    def pidfile_path(self):
        return self.globals.get("pidfile") or os.path.join(self.configdir, "cofferd.pid")

    def status(self, timeout=10):
        """SIGUSR1 the master and parse CONFIGDIR/cofferd.status: {service: {key: int}} from
        its `event=status service=NAME workers=N ready=N busy=N served=N` lines."""
        path = self.status_path()
        try:
            os.unlink(path)
        except FileNotFoundError:
            pass
        self.send_signal(signal.SIGUSR1)
        prev = [None]

        def stable():
            try:
                with open(path) as f:
                    text = f.read()
            except FileNotFoundError:
                return None
            if not text.endswith("\n"):
                return None
            if text == prev[0]:
                return text
            prev[0] = text
            return None
        text = wait_for(stable, timeout, 0.05, "status file %s" % path)
        return parse_status(text)

    # ---- logs

    def log_size(self):
        try:
            return os.path.getsize(self.log_path)
        except OSError:
            return 0

    def log_text(self, since=0):
        try:
            with open(self.log_path, "rb") as f:
                f.seek(since)
                return f.read().decode("utf-8", "replace")
        except OSError:
            return ""

    def log_tail(self, n=60):
        return "\n".join(self.log_text().splitlines()[-n:])

    def log_grep(self, pattern, since=0):
        rx = re.compile(pattern)
        return [l for l in self.log_text(since).splitlines() if rx.search(l)]

    def wait_log(self, pattern, timeout=10, since=0):
        """Wait for a log line matching pattern; returns the first such line."""
        found = wait_for(lambda: self.log_grep(pattern, since), timeout, 0.05,
                         "log line /%s/" % pattern)
        return found[0]

    def sanitizer_reports(self):
        """Log lines that show an ASan/UBSan/LSan report."""
        return self.log_grep(r"ERROR: (Address|Leak)Sanitizer|runtime error:|"
                             r"LeakSanitizer has encountered")

    # ---- clients

    def address(self, service):
        if service in self.unix_paths:
            return self.unix_paths[service]
        return (HOST, self.ports[service])

    def raw_socket(self, service, timeout=IO_TIMEOUT):
        """A connected plain socket to service (TCP or UNIX), no TLS, nothing read."""
        addr = self.address(service)
        fam = socket.AF_UNIX if isinstance(addr, str) else socket.AF_INET
        s = socket.socket(fam, socket.SOCK_STREAM)
        s.settimeout(timeout)
        try:
            s.connect(addr)
        except BaseException:
            s.close()
            raise
        return s

    def connect(self, service, timeout=IO_TIMEOUT, tls=None):
        """A Conn to service; implicit-TLS services (or tls=True) are wrapped in TLS first.
        The greeting is not read."""
        s = self.raw_socket(service, timeout)
        if tls is None:
            tls = self.is_implicit(service)
        if tls:
            try:
                s = self.ssl_context().wrap_socket(s, server_hostname="localhost")
            except BaseException:
                s.close()
                raise
        return Conn(s, timeout)

    def imap(self, service="imap", timeout=IO_TIMEOUT):
        """imaplib client (IMAP4_SSL on implicit-TLS services); greeting already read."""
        if self.is_implicit(service):
            return imaplib.IMAP4_SSL(HOST, self.ports[service], ssl_context=self.ssl_context(),
                                     timeout=timeout)
        return imaplib.IMAP4(HOST, self.ports[service], timeout=timeout)

    def pop3(self, service="pop3", timeout=IO_TIMEOUT):
        if self.is_implicit(service):
            return poplib.POP3_SSL(HOST, self.ports[service], context=self.ssl_context(),
                                   timeout=timeout)
        return poplib.POP3(HOST, self.ports[service], timeout=timeout)

    def lmtp(self, service="lmtp", timeout=IO_TIMEOUT):
        """smtplib.LMTP over TCP or the UNIX socket."""
        if service in self.unix_paths:
            return smtplib.LMTP(self.unix_paths[service], timeout=timeout)
        return smtplib.LMTP(HOST, self.ports[service], timeout=timeout)

    def add_user(self, name, password):
        """Create a user in sasldb with `coffer -C conf user add NAME -p PASSWORD` (the tool
        becomes the service user itself when run as root). Raises on failure."""
        self._chown_tree()
        r = subprocess.run([os.path.join(self.bindir, "coffer"), "-C", self.conf_path, "user",
                            "add", name, "-p", password], stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, timeout=60, env=self.env())
        if r.returncode != 0:
            raise RuntimeError("coffer user add %s failed (%d): %s" % (
                name, r.returncode, r.stdout.decode(errors="replace")))


def parse_status(text):
    """{service: {key: int or str}} from status lines (key=value pairs with service=NAME)."""
    out = {}
    for line in text.splitlines():
        kv = dict(re.findall(r"(\w+)=(\"(?:[^\"\\]|\\.)*\"|\S+)", line))
        if "service" not in kv:
            continue
        d = {}
        for k, v in kv.items():
            d[k] = int(v) if v.isdigit() else v
        out[kv["service"]] = d
    return out


def port_refuses(port, host=HOST, timeout=2):
    """True when a TCP connect to host:port is refused."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return False
    except ConnectionRefusedError:
        return True
    except OSError as e:
        return e.errno == errno.ECONNREFUSED


# ---------------------------------------------------------------- unittest support

class CofferTestCase(unittest.TestCase):
    """Base class: instances made with self.new_coffer(...) are closed by cleanup; if the test
    failed, the tail of each instance's log is printed first (before the temp dir goes). After
    each test, a sanitizer report in a log fails the test."""

    maxDiff = None

    def new_coffer(self, start=True, **kw):
        c = Coffer(**kw)
        if not hasattr(self, "_coffers"):
            self._coffers = []
        self._coffers.append(c)
        self.addCleanup(self._close_coffer, c)
        if start:
            c.start()
        return c

    def _close_coffer(self, c):
        c.close()
        outcome = getattr(self, "_outcome", None)
        failed = outcome is not None and not getattr(outcome, "success", True)
        if failed or c.final_sanitizer_reports:
            sys.stderr.write("\n---- %s: tail of %s ----\n%s\n" % (
                self.id(), c.log_path, c.final_log_tail))
        if c.final_sanitizer_reports:
            raise AssertionError("sanitizer reports in the cofferd log:\n" +
                                 "\n".join(c.final_sanitizer_reports[:20]))


class SharedCofferTestCase(unittest.TestCase):
    """Base class for tests that share one running instance per class (cls.coffer), made
    with cls.coffer_kwargs. The log tail is printed if any test of the class failed; a
    sanitizer report in the log fails the class teardown."""

    coffer_kwargs = {}
    maxDiff = None

    @classmethod
    def setUpClass(cls):
        cls._any_failed = False
        cls.coffer = Coffer(**cls.coffer_kwargs)
        try:
            cls.coffer.start()
        except BaseException:
            cls.coffer.close()
            raise

    @classmethod
    def tearDownClass(cls):
        c = cls.coffer
        c.close()
        if cls._any_failed or c.final_sanitizer_reports:
            sys.stderr.write("\n---- %s: tail of %s ----\n%s\n" % (
                cls.__name__, c.log_path, c.final_log_tail))
        if c.final_sanitizer_reports:
            raise AssertionError("sanitizer reports in the cofferd log:\n" +
                                 "\n".join(c.final_sanitizer_reports[:20]))

    def setUp(self):
        self.addCleanup(self._note_outcome)

    def _note_outcome(self):
        outcome = getattr(self, "_outcome", None)
        if outcome is not None and not getattr(outcome, "success", True):
            type(self)._any_failed = True


class ImapUsersTestCase(SharedCofferTestCase):
    """A shared instance with the accounts in cls.users (name -> password) and the IMAP
    helpers the ACL, quota and hostile suites share: conn() logs a user in, ok() and no()
    check a command's tagged answer."""

    users = {}

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        for u, p in cls.users.items():
            cls.coffer.add_user(u, p)

    def conn(self, user):
        c = self.coffer.connect("imap")
        self.addCleanup(c.close)
        c.expect(rb"^\* OK")
        self.assertRegex(c.imap("l", "LOGIN %s %s" % (user, self.users[user]))[0], rb"^l OK")
        return c

    def conn_settled(self, user, timeout=30):
        """conn(user) once the server serves again after a kill -9: a worker killed inside
        Berkeley DB can make cofferd stop every worker, recover the databases and start the
        pools again (cofferd(8)), which closes every session. Retries until a login works."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                c = self.conn(user)
                self.ok(c, "NOOP", "n")
                return c
            except (OSError, EOFError, AssertionError):
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)

    def ok(self, c, text, tag="t"):
        tagged, untagged = c.imap(tag, text)
        self.assertRegex(tagged, rb"^" + tag.encode() + rb" OK", (text, tagged, untagged))
        return untagged

    def no(self, c, text, code, tag="t"):
        """code: the response code expected in brackets (a regex)."""
        tagged, untagged = c.imap(tag, text)
        self.assertRegex(tagged, rb"^" + tag.encode() + rb" NO \[" + code.encode() + rb"\]",
                         (text, tagged, untagged))
        return untagged


def check_binaries():
    """Exit 0 when cofferd, imapd, pop3d, lmtpd, sieved, router, coffer and the test helpers
    (test/helpers/) exist in bin_dir(), else list what is missing and exit 1 (the ctest
    fixture that gates the end-to-end tests)."""
    missing = [p for p in ("cofferd", "imapd", "pop3d", "lmtpd", "sieved", "router", "coffer",
                           "pop3-testfill",
                           "lmtp-testtool")
               if not os.access(os.path.join(bin_dir(), p), os.X_OK)]
    if missing:
        sys.stderr.write("missing in %s: %s (build the default target first)\n" % (
            bin_dir(), " ".join(missing)))
        return 1
    if os.geteuid() == 0 and not _path_world_executable(bin_dir()):
        sys.stderr.write("%s is not searchable by an unprivileged service user\n" % bin_dir())
        return 1
    print("binaries present in %s" % bin_dir())
    return 0


def main():
    """unittest.main with verbose output; exits non-zero on failure."""
    unittest.main(verbosity=2)


if __name__ == "__main__":
    if sys.argv[1:] == ["--check-binaries"]:
        sys.exit(check_binaries())
    sys.stderr.write("usage: coffer_harness.py --check-binaries\n")
    sys.exit(2)
