#!/usr/bin/env python3
"""bench-append-calls.py: system calls or CPU of one worker per APPEND or LMTP delivery.

    bench-append-calls.py imap PORT N USER [--strace]
    bench-append-calls.py lmtp PORT N USER [--strace]
    ... [--trace FILE]   the calls themselves (strace -f -y -p), one per line, into FILE

imap: LOGIN USER (password "pw", as scripts/bench-start.sh makes them), SELECT INBOX, then N
APPENDs of a 609-byte message to INBOX, each waiting for its tagged OK. lmtp: N one-recipient
deliveries (MAIL, RCPT, DATA) to USER on one connection. The worker serving the connection is
found with ss(8); its CPU (utime + stime, /proc/PID/stat) over the N operations is printed per
operation, and with --strace the `strace -c -f -p` summary and the calls per operation (run
as root). docs/perf/append-store.md, "APPEND through the selected mailbox"."""
import os
import re
import signal
import socket
import subprocess
import sys
import time


def worker_pid(port, lport):
    out = subprocess.run(["ss", "-tnpH", "sport", "= :%d" % port, "dport", "= :%d" % lport],
                         capture_output=True, text=True).stdout
    return int(re.search(r"pid=(\d+)", out).group(1))


def cpu_s(pid):
    x = open("/proc/%d/stat" % pid).read().rsplit(")", 1)[1].split()
    return (int(x[11]) + int(x[12])) / os.sysconf("SC_CLK_TCK")


def main():
    if len(sys.argv) < 5 or sys.argv[1] not in ("imap", "lmtp"):
        sys.exit(__doc__)
    proto, port, n, user = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
    use_strace = "--strace" in sys.argv[5:]
    trace = sys.argv[sys.argv.index("--trace") + 1] if "--trace" in sys.argv[5:] else None
    s = socket.create_connection(("127.0.0.1", port))
    f = s.makefile("rb")

    def imap(tag, line):
        s.sendall(line)
        while True:
            l = f.readline()
            if not l:
                sys.exit("connection closed")
            if l.startswith(tag + b" "):
                return l

    def smtp(line):
        s.sendall(line)
        while True:
            l = f.readline()
            if not l:
                sys.exit("connection closed")
            if l[3:4] != b"-":
                return l

    f.readline()
    if proto == "imap":
        assert b" OK" in imap(b"a", b"a LOGIN %s pw\r\n" % user.encode())
        assert b" OK" in imap(b"b", b"b SELECT INBOX\r\n")
    else:
        smtp(b"LHLO bench\r\n")
    pid = worker_pid(port, s.getsockname()[1])
    out = "/tmp/bench-append-calls.%d.strace" % os.getpid()
    st = None
    if use_strace:
        st = subprocess.Popen(["strace", "-c", "-f", "-p", str(pid), "-o", out])
        time.sleep(1.0)
    elif trace:
        st = subprocess.Popen(["strace", "-f", "-y", "-p", str(pid), "-o", trace])
        time.sleep(1.0)
    c0 = cpu_s(pid)
    for i in range(n):
        if proto == "imap":
            msg = (b"From: a@example.org\r\nTo: %s@example.org\r\nSubject: append\r\n"
                   b"Message-ID: <x@y>\r\n\r\n" % user.encode()) + b"hello world\r\n" * 40
            r = imap(b"A%d" % i, b"A%d APPEND INBOX {%d+}\r\n%s\r\n" % (i, len(msg), msg))
            assert b" OK " in r, r
        else:
            msg = (b"From: a@example.org\r\nTo: %s@localhost\r\nSubject: lmtp %d\r\n"
                   b"Message-ID: <l%d.%f@x>\r\n\r\n" % (user.encode(), i, i, time.time())
                   ) + b"hello world\r\n" * 40
            assert smtp(b"MAIL FROM:<a@example.org>\r\n").startswith(b"250")
            assert smtp(b"RCPT TO:<%s@localhost>\r\n" % user.encode()).startswith(b"250")
            assert smtp(b"DATA\r\n").startswith(b"354")
            r = smtp(msg + b".\r\n")
            assert r.startswith(b"250"), r
    c1 = cpu_s(pid)
    if st:
        time.sleep(0.5)
        st.send_signal(signal.SIGINT)
        st.wait()
    if proto == "imap":
        imap(b"z", b"z LOGOUT\r\n")
    else:
        smtp(b"QUIT\r\n")
    what = "APPEND" if proto == "imap" else "delivery"
    if use_strace:
        text = open(out).read()
        os.unlink(out)
        print(text)
        total = [l for l in text.splitlines() if l.rstrip().endswith(" total")][-1]
        print("%s pid %d: %.1f calls per %s" % (proto, pid, int(total.split()[3]) / n, what))
    print("%s pid %d: %d operations, %.0f us CPU per %s" % (proto, pid, n, (c1 - c0) / n * 1e6,
                                                          what))


if __name__ == "__main__":
    main()
