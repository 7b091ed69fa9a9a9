#!/usr/bin/env python3
"""make bench: ktlstun against stunnel4, haproxy, socat and plain TCP, same run, loopback.

Every peer does the same job: mutual TLS with ECDSA P-256 certificates, TLS 1.3 only,
TLS_AES_128_GCM_SHA256 only, no session resumption, each with its own defaults for
everything else (workers/threads, buffers, logging). Topology for every figure:

    load tool -> client-side tunnel -> server-side tunnel -> sink     (plain: tool -> sink)

Figures (each the median of several runs):
  1. throughput, 1 and 8 parallel streams: iperf3 -> tunnel pair -> iperf3 -s
  2. full mTLS handshakes/s at concurrency 1 and 64: handshake_load -> server side ->
     echo sink; plus handshakes per CPU-second of the server, the ceiling that
     `openssl speed` sets, and ktlstun with workers = 1 against workers = 2
  3. round-trip latency, 64-byte ping-pong: pingpong -> tunnel pair -> echo sink
  4. memory per 1,000 established idle tunnels at 1,000 and 10,000: idle_conns ->
     tunnel pair -> echo sink; PSS (and RSS) summed over every process of both ends
  5. CPU seconds (user, sys) of both ends per GB relayed, from the 1-stream runs

Results: RESULTS/latest.json (every run), RESULTS/latest.md (tables), RESULTS/chart.png.
Only the standard library; processes are started in their own process groups and
ended by those groups' ids.
"""
import argparse
import datetime
import json
import os
import platform
import random
import re
import resource
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time

CIPHERSUITE = "TLS_AES_128_GCM_SHA256"
CLK_TCK = os.sysconf("SC_CLK_TCK")
PAGE_KB = os.sysconf("SC_PAGE_SIZE") // 1024
PEER_ORDER = ["ktlstun", "stunnel4", "haproxy", "socat", "plain"]
TUNNELS = ["ktlstun", "stunnel4", "haproxy", "socat"]
LABEL = {"ktlstun": "ktlstun", "stunnel4": "stunnel4", "haproxy": "haproxy", "socat": "socat",
         "plain": "plain TCP"}


def log(msg):
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


class BenchError(Exception):
    pass


# ---------------------------------------------------------------- processes ---

class Harness:
    """Starts processes in their own groups, remembers them, ends them by group id."""

    def __init__(self, build, work):
        self.build = build
        self.work = work
        self.started = []
        self.used_ports = set()

    def spawn(self, name, argv, env=None, stdin=subprocess.DEVNULL, stdout=None):
        logfile = os.path.join(self.work, f"{name}.log")
        out = open(logfile, "ab")
        proc = subprocess.Popen(argv, stdin=stdin, stdout=stdout if stdout is not None else out,
                                stderr=out, env=env, cwd=self.work, start_new_session=True)
        out.close()
        proc.bench_name = name
        proc.bench_log = logfile
        self.started.append(proc)
        return proc

    def stop(self, proc, grace=5.0):
        if proc not in self.started:
            return
        self.started.remove(proc)
        try:
            os.killpg(proc.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        try:
            proc.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            pass
        # Children of a stopped parent (socat's forks) may still be in the group.
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        try:
            proc.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            raise BenchError(f"{proc.bench_name} (pid {proc.pid}) does not exit")

    def stop_all(self):
        for proc in list(reversed(self.started)):
            self.stop(proc, grace=2.0)

    def free_port(self):
        # Below the ephemeral range (32768+), so outgoing connections never hold it.
        listening = listening_ports()
        for _ in range(500):
            port = random.randint(20000, 32000)
            if port not in self.used_ports and port not in listening:
                self.used_ports.add(port)
                return port
        raise BenchError("no free port")

    def tail(self, proc, lines=15):
        try:
            with open(proc.bench_log, errors="replace") as f:
                return "".join(f.readlines()[-lines:])
        except OSError:
            return ""

    def wait_ready(self, proc, port=None, log_re=None, timeout=15.0):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise BenchError(f"{proc.bench_name} exited ({proc.returncode}):\n{self.tail(proc)}")
            if port is not None and port in listening_ports():
                return
            if log_re is not None:
                with open(proc.bench_log, errors="replace") as f:
                    if re.search(log_re, f.read()):
                        return
            time.sleep(0.05)
        raise BenchError(f"{proc.bench_name} not ready after {timeout} s:\n{self.tail(proc)}")


def listening_ports():
    ports = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(table) as f:
                next(f)
                for line in f:
                    fields = line.split()
                    if fields[3] == "0A":
                        ports.add(int(fields[1].rsplit(":", 1)[1], 16))
        except OSError:
            pass
    return ports


def process_table():
    """pid -> (ppid, user ticks incl. reaped children, sys ticks incl. reaped children)."""
    table = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                stat = f.read()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2:].split()
        # fields[0] is field 3 (state): utime=14 stime=15 cutime=16 cstime=17.
        table[int(entry)] = (int(fields[1]), int(fields[11]) + int(fields[13]),
                             int(fields[12]) + int(fields[14]))
    return table


def descendants(roots, table=None):
    table = table if table is not None else process_table()
    children = {}
    for pid, (ppid, _, _) in table.items():
        children.setdefault(ppid, []).append(pid)
    found, todo = [], [p for p in roots if p in table]
    while todo:
        pid = todo.pop()
        found.append(pid)
        todo.extend(children.get(pid, []))
    return found, table


def cpu_seconds(roots):
    """User and system CPU seconds of ROOTS and every descendant, living or reaped.

    Exited children that their parent waited for are in its cutime/cstime, living
    ones in their own utime/stime: summing both over the living tree counts each
    CPU-second once."""
    pids, table = descendants(roots)
    user = sum(table[p][1] for p in pids) / CLK_TCK
    system = sum(table[p][2] for p in pids) / CLK_TCK
    return user, system


def memory_kb(roots):
    """(RSS, PSS) in KiB summed over ROOTS and their descendants, and the process count.
    PSS shares each page among the processes mapping it, so forked peers (socat) are
    not charged their parent's pages once per child."""
    pids, _ = descendants(roots)
    rss = pss = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/smaps_rollup") as f:
                for line in f:
                    if line.startswith("Rss:"):
                        rss += int(line.split()[1])
                    elif line.startswith("Pss:"):
                        pss += int(line.split()[1])
        except OSError:
            pass
    return rss, pss, len(pids)


def run_tool(argv, timeout):
    """Runs ARGV to completion; returns (exit status, stdout, stderr)."""
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            stdin=subprocess.DEVNULL, start_new_session=True)
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, err = proc.communicate()
        raise BenchError(f"{argv[0]} timed out after {timeout} s: {err.decode(errors='replace')[-500:]}")
    return proc.returncode, out.decode(errors="replace"), err.decode(errors="replace")


def key_values(line):
    return dict(re.findall(r"(\w+)=(\S+)", line))


# --------------------------------------------------------------------- PKI ----

def make_pki(work):
    """Root CA (EC P-256) signing a server leaf and a client leaf directly: the server
    verifies exactly two signatures per handshake (client leaf, CertificateVerify)."""
    pki = os.path.join(work, "pki")
    os.makedirs(pki)

    def ossl(*args):
        subprocess.run(["openssl", *args], cwd=pki, check=True, stdout=subprocess.DEVNULL,
                       stderr=subprocess.PIPE)

    def key(name):
        ossl("genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", f"{name}.key")

    key("ca")
    ossl("req", "-x509", "-new", "-key", "ca.key", "-out", "ca.pem", "-days", "2", "-subj",
         "/CN=ktlstun bench CA", "-addext", "basicConstraints=critical,CA:TRUE",
         "-addext", "keyUsage=critical,keyCertSign,cRLSign")
    for name, subject, ext in (
            ("server", "/CN=localhost", "subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth"),
            ("client", "/CN=bench-client", "extendedKeyUsage=clientAuth")):
        key(name)
        ossl("req", "-new", "-key", f"{name}.key", "-subj", subject, "-out", f"{name}.csr")
        with open(os.path.join(pki, f"{name}.ext"), "w") as f:
            f.write(ext + "\n")
        ossl("x509", "-req", "-in", f"{name}.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
             "-CAcreateserial", "-days", "2", "-extfile", f"{name}.ext", "-out", f"{name}.pem")
        # haproxy wants certificate and key in one file.
        with open(os.path.join(pki, f"{name}-combined.pem"), "w") as out:
            for part in (f"{name}.pem", f"{name}.key"):
                with open(os.path.join(pki, part)) as f:
                    out.write(f.read())
    return pki


# ------------------------------------------------------------------- peers ----

class Peer:
    name = None

    def __init__(self, h, pki):
        self.h = h
        self.pki = pki

    def file(self, name):
        return os.path.join(self.pki, name)

    def write(self, name, text):
        path = os.path.join(self.h.work, name)
        with open(path, "w") as f:
            f.write(text)
        return path


class Ktlstun(Peer):
    name = "ktlstun"

    def __init__(self, h, pki, workers=None, server_extra=""):
        super().__init__(h, pki)
        self.workers = workers
        self.server_extra = server_extra

    def _start(self, role, listen, target, extra):
        tag = f"ktlstun-{role}-{listen}"
        state = os.path.join(self.h.work, tag)
        os.makedirs(state, exist_ok=True)
        workers = f"workers = {self.workers}\n" if self.workers else ""
        cert, key = ("server.pem", "server.key") if role == "server" else ("client.pem", "client.key")
        # All load comes from one address here, by design: per-source limits off, as
        # the peers have none.
        per_source = ("max_connections_per_source = 0\nhandshake_rate_per_source = 0\n"
                      if role == "server" else "")
        conf = self.write(f"{tag}.ini", f"""[global]
state_dir = {state}
runtime_dir = {state}
{workers}
[bench]
mode = {role}
listen = 127.0.0.1:{listen}
target = 127.0.0.1:{target}
cert = {self.file(cert)}
key = {self.file(key)}
ca = {self.file('ca.pem')}
tls_min_version = 1.3
ciphersuites = {CIPHERSUITE}
max_connections = 30000
{per_source}{extra}""")
        proc = self.h.spawn(tag, [os.path.join(self.h.build, "ktlstund"), "-f", "-c", conf])
        self.h.wait_ready(proc, log_re=r"notice: ready")
        return proc

    def server(self, listen, target):
        return self._start("server", listen, target, self.server_extra)

    def client(self, listen, target):
        return self._start("client", listen, target, "server_name = localhost\n")


class Stunnel(Peer):
    name = "stunnel4"

    def _start(self, role, listen, target, extra):
        tag = f"stunnel-{role}-{listen}"
        cert, key = ("server.pem", "server.key") if role == "server" else ("client.pem", "client.key")
        conf = self.write(f"{tag}.conf", f"""foreground = yes
pid =
[bench]
accept = 127.0.0.1:{listen}
connect = 127.0.0.1:{target}
cert = {self.file(cert)}
key = {self.file(key)}
CAfile = {self.file('ca.pem')}
verifyChain = yes
requireCert = yes
sslVersionMin = TLSv1.3
ciphersuites = {CIPHERSUITE}
sessionResume = no
{extra}""")
        proc = self.h.spawn(tag, ["stunnel4", conf])
        self.h.wait_ready(proc, port=listen)
        return proc

    def server(self, listen, target):
        return self._start("server", listen, target, "")

    def client(self, listen, target):
        return self._start("client", listen, target, "client = yes\nsni = localhost\ncheckHost = localhost\n")


class Haproxy(Peer):
    name = "haproxy"
    # haproxy refuses to start when maxconn needs more descriptors than it may open.
    MAXCONN = 0   # set by main() from the memory figure's top step
    GLOBAL = """global
    maxconn {maxconn}
    tune.ssl.cachesize 0
    ssl-default-bind-options ssl-min-ver TLSv1.3 no-tls-tickets
    ssl-default-bind-ciphersuites {ciphersuite}
    ssl-default-server-options ssl-min-ver TLSv1.3 no-tls-tickets
    ssl-default-server-ciphersuites {ciphersuite}
defaults
    mode tcp
    maxconn {maxconn}
    timeout connect 10s
    timeout client 1h
    timeout server 1h
"""

    def _start(self, tag, listen, body):
        conf = self.write(f"{tag}.cfg", self.GLOBAL.format(maxconn=self.MAXCONN, ciphersuite=CIPHERSUITE) + body)
        proc = self.h.spawn(tag, ["haproxy", "-db", "-f", conf])
        self.h.wait_ready(proc, port=listen)
        return proc

    def server(self, listen, target):
        return self._start(f"haproxy-server-{listen}", listen, f"""frontend bench
    bind 127.0.0.1:{listen} ssl crt {self.file('server-combined.pem')} ca-file {self.file('ca.pem')} verify required
    default_backend sink
backend sink
    server sink 127.0.0.1:{target}
""")

    def client(self, listen, target):
        return self._start(f"haproxy-client-{listen}", listen, f"""frontend bench
    bind 127.0.0.1:{listen}
    default_backend tunnel
backend tunnel
    server tunnel 127.0.0.1:{target} ssl crt {self.file('client-combined.pem')} ca-file {self.file('ca.pem')} verify required verifyhost localhost sni str(localhost) no-ssl-reuse
""")


class Socat(Peer):
    name = "socat"

    # socat is the one peer that leaves Nagle on by default; with it every small
    # reply after a handshake waits for a delayed ACK (~40 ms), so it gets nodelay.

    def env(self):
        # socat has no ciphersuites option: OpenSSL's own config does it.
        conf = self.write("socat-openssl.cnf", f"""openssl_conf = default_conf
[default_conf]
ssl_conf = ssl_sect
[ssl_sect]
system_default = system_default_sect
[system_default_sect]
MinProtocol = TLSv1.3
Ciphersuites = {CIPHERSUITE}
""")
        return dict(os.environ, OPENSSL_CONF=conf)

    def server(self, listen, target):
        proc = self.h.spawn(f"socat-server-{listen}", [
            "socat", f"OPENSSL-LISTEN:{listen},bind=127.0.0.1,reuseaddr,fork,backlog=4096,nodelay,"
            f"cert={self.file('server.pem')},key={self.file('server.key')},cafile={self.file('ca.pem')},"
            f"verify=1,openssl-min-proto-version=TLS1.3", f"TCP:127.0.0.1:{target},nodelay"], env=self.env())
        self.h.wait_ready(proc, port=listen)
        return proc

    def client(self, listen, target):
        proc = self.h.spawn(f"socat-client-{listen}", [
            "socat", f"TCP-LISTEN:{listen},bind=127.0.0.1,reuseaddr,fork,backlog=4096,nodelay",
            f"OPENSSL:127.0.0.1:{target},cert={self.file('client.pem')},key={self.file('client.key')},"
            f"cafile={self.file('ca.pem')},verify=1,commonname=localhost,snihost=localhost,"
            f"openssl-min-proto-version=TLS1.3,nodelay"], env=self.env())
        self.h.wait_ready(proc, port=listen)
        return proc


def make_peer(name, h, pki, workers=None):
    return {"ktlstun": lambda: Ktlstun(h, pki, workers), "stunnel4": lambda: Stunnel(h, pki),
            "haproxy": lambda: Haproxy(h, pki), "socat": lambda: Socat(h, pki),
            "plain": lambda: None}[name]()


class Setup:
    """Sink, and in front of it the server side and (pair=True) the client side of a
    peer. `entry` is where the load tool connects; `roots` are the tunnel processes."""

    def __init__(self, h, peer, sink, pair=True):
        self.h = h
        self.procs = []
        self.roots = []
        sink_port = h.free_port()
        if sink == "iperf":
            proc = h.spawn(f"iperf3-{sink_port}", ["iperf3", "-s", "-B", "127.0.0.1", "-p", str(sink_port)])
            self.procs.append(proc)
            h.wait_ready(proc, port=sink_port)
        else:
            proc = h.spawn(f"echo-{sink_port}", [os.path.join(h.build, "tools", "echo_server"),
                                                 f"127.0.0.1:{sink_port}"])
            self.procs.append(proc)
            h.wait_ready(proc, log_re=r"^listening$")
        self.entry = sink_port
        if peer is None:
            return
        server_port = h.free_port()
        server = peer.server(server_port, sink_port)
        self.procs.append(server)
        self.roots.append(server.pid)
        self.entry = server_port
        if pair:
            client_port = h.free_port()
            client = peer.client(client_port, server_port)
            self.procs.append(client)
            self.roots.append(client.pid)
            self.entry = client_port

    def close(self):
        for proc in reversed(self.procs):
            self.h.stop(proc)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


# ----------------------------------------------------------------- figures ----

def median(values):
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def guarded(results, name, figure, fn, *args):
    """Runs one peer's part of a figure; a failure is recorded and logged, and the
    other peers and figures still run. Returns what FN returns, or None."""
    try:
        return fn(*args)
    except BenchError as e:
        log(f"{figure} {name}: FAILED: {e}")
        results.setdefault(name, {}).setdefault("errors", {})[figure] = str(e)[-1000:]
        return None


class Fleet:
    """One Setup per peer, all up at once, so that runs can take turns: run 1 of every
    peer, then run 2 of every peer... A burst of load from elsewhere on the machine
    then lands on all peers alike instead of on whichever one was measured."""

    def __init__(self, h, results, figure, entries):
        self.results = results
        self.figure = figure
        self.setups = {}
        for key, make in entries:
            setup = guarded(results, key, figure, make)
            if setup is not None:
                self.setups[key] = setup

    def measure(self, runs, fn):
        """Calls FN(key, setup) RUNS times for every peer, round-robin; returns
        {key: [samples]} without the peers that failed (their error is recorded)."""
        samples = {key: [] for key in self.setups}
        keys = list(self.setups)
        for run in range(runs):
            # Each round starts with a different peer, so none always runs first.
            for key in keys[run % len(keys):] + keys[:run % len(keys)]:
                setup = self.setups[key]
                if key not in samples:
                    continue
                sample = guarded(self.results, key, self.figure, fn, key, setup)
                if sample is None:
                    del samples[key]
                else:
                    samples[key].append(sample)
        return samples

    def close(self):
        for setup in self.setups.values():
            setup.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def throughput(h, pki, cfg, results):
    def make(name):
        return lambda: Setup(h, make_peer(name, h, pki), "iperf")

    def one_run(streams):
        def run(name, setup):
            before = cpu_seconds(setup.roots)
            status, out, err = run_tool(["iperf3", "-c", "127.0.0.1", "-p", str(setup.entry),
                                         "-t", str(cfg.tp_seconds), "-P", str(streams), "-J"],
                                        timeout=cfg.tp_seconds + 30)
            after = cpu_seconds(setup.roots)
            if status != 0:
                raise BenchError(f"iperf3 through {name} failed: {out[-800:]} {err[-400:]}")
            received = json.loads(out)["end"]["sum_received"]
            gb = received["bytes"] / 1e9
            sample = {"gbit_s": received["bits_per_second"] / 1e9, "bytes": received["bytes"]}
            if setup.roots:
                sample["cpu_user_s"] = after[0] - before[0]
                sample["cpu_sys_s"] = after[1] - before[1]
                sample["cpu_user_s_per_gb"] = sample["cpu_user_s"] / gb
                sample["cpu_sys_s_per_gb"] = sample["cpu_sys_s"] / gb
            time.sleep(0.2)
            return sample
        return run

    with Fleet(h, results, "throughput", [(n, make(n)) for n in PEER_ORDER]) as fleet:
        for streams, runs in ((1, cfg.tp_runs_1), (8, cfg.tp_runs_8)):
            for name, samples in fleet.measure(runs, one_run(streams)).items():
                entry = results.setdefault(name, {})
                entry[f"throughput_{streams}"] = {"runs": samples,
                                                  "median_gbit_s": median(s["gbit_s"] for s in samples)}
                if streams == 1 and "cpu_user_s" in samples[0]:
                    entry["cpu_per_gb"] = {
                        "from": "the 1-stream throughput runs, both tunnel ends",
                        "median_user_s": median(s["cpu_user_s_per_gb"] for s in samples),
                        "median_sys_s": median(s["cpu_sys_s_per_gb"] for s in samples),
                        "median_total_s": median(s["cpu_user_s_per_gb"] + s["cpu_sys_s_per_gb"]
                                                 for s in samples)}
                log(f"throughput {name:9} {streams} stream(s): "
                    f"{entry[f'throughput_{streams}']['median_gbit_s']:.2f} Gbit/s "
                    "(runs: " + ", ".join(f"{s['gbit_s']:.2f}" for s in samples) + ")")


def handshakes(h, pki, cfg, results):
    # ktlstun-w1/-w2: the same server with `workers = 1` and `workers = 2`. ktlstun-full:
    # `verify_cache = 0`, every client chain verified in full as the peers do (the load
    # tool reconnects with one certificate, so by default ktlstun verifies its chain once).
    peers = {name: (lambda n=name: make_peer(n, h, pki)) for name in TUNNELS}
    peers["ktlstun-w1"] = lambda: Ktlstun(h, pki, workers=1)
    peers["ktlstun-w2"] = lambda: Ktlstun(h, pki, workers=2)
    peers["ktlstun-full"] = lambda: Ktlstun(h, pki, server_extra="verify_cache = 0\n")
    variants = ("ktlstun-w1", "ktlstun-w2", "ktlstun-full")

    def make(key):
        return lambda: Setup(h, peers[key](), "echo", pair=False)

    def one_run(concurrency):
        def run(key, setup):
            before = cpu_seconds(setup.roots)
            tool_before = resource.getrusage(resource.RUSAGE_CHILDREN)
            status, out, err = run_tool([
                os.path.join(h.build, "bench", "handshake_load"), "--connect", f"127.0.0.1:{setup.entry}",
                "--cert", os.path.join(pki, "client.pem"), "--key", os.path.join(pki, "client.key"),
                "--concurrency", str(concurrency), "--duration", str(cfg.hs_seconds)],
                timeout=cfg.hs_seconds + 30)
            after = cpu_seconds(setup.roots)
            tool_after = resource.getrusage(resource.RUSAGE_CHILDREN)
            line = next((l for l in out.splitlines() if l.startswith("handshake_load:")), "")
            if not line:
                raise BenchError(f"handshake_load against {key} printed nothing: {err[-600:]}")
            kv = key_values(line)
            server_cpu = (after[0] - before[0]) + (after[1] - before[1])
            sample = {"rate": float(kv["rate"]), "handshakes": int(kv["handshakes"]),
                      "failed": int(kv["failed"]), "resumed": int(kv["resumed"]),
                      "protocol": kv["protocol"], "cipher": kv["cipher"], "group": kv["group"],
                      "server_cpu_s": server_cpu,
                      "load_tool_cpu_s": (tool_after.ru_utime - tool_before.ru_utime)
                                         + (tool_after.ru_stime - tool_before.ru_stime),
                      "per_server_cpu_s": int(kv["handshakes"]) / server_cpu if server_cpu > 0 else None}
            if status != 0:
                sample["error"] = err.strip()[-300:]
            time.sleep(0.3)
            return sample
        return run

    def summary(samples):
        return {"runs": samples, "median_rate": median(s["rate"] for s in samples),
                "median_per_server_cpu_s": median(s["per_server_cpu_s"] for s in samples),
                "negotiated": {k: samples[0][k] for k in ("protocol", "cipher", "group")}}

    with Fleet(h, results, "handshakes", [(k, make(k)) for k in peers]) as fleet:
        for concurrency in (1, 64):
            workers = {key: fleet.setups.pop(key) for key in variants
                       if concurrency == 1 and key in fleet.setups}
            for key, samples in fleet.measure(cfg.hs_runs, one_run(concurrency)).items():
                entry = summary(samples)
                failed = sum(s["failed"] for s in samples)
                log(f"handshakes {key:10} c={concurrency:<3}: {entry['median_rate']:.0f}/s, "
                    f"{entry['median_per_server_cpu_s'] or 0:.0f} per server CPU-s "
                    f"({samples[0]['protocol']} {samples[0]['cipher']} {samples[0]['group']}"
                    f"{', %d FAILED' % failed if failed else ''})")
                if key == "ktlstun-full":
                    results.setdefault("ktlstun", {})["handshakes_64_verify_cache_off"] = entry
                elif key.startswith("ktlstun-w"):
                    results.setdefault("ktlstun", {}).setdefault("handshakes_workers", {})[key[-1]] = entry
                else:
                    results.setdefault(key, {})[f"handshakes_{concurrency}"] = entry
            fleet.setups.update(workers)


def latency(h, pki, cfg, results):
    def make(name):
        return lambda: Setup(h, make_peer(name, h, pki), "echo")

    def run(name, setup):
        status, out, err = run_tool([os.path.join(h.build, "bench", "pingpong"), "--connect",
                                     f"127.0.0.1:{setup.entry}", "--size", "64",
                                     "--count", str(cfg.lat_count)], timeout=120)
        if status != 0:
            raise BenchError(f"pingpong through {name} failed: {err[-500:]}")
        kv = key_values(out)
        return {k: float(kv[k]) for k in ("p50_us", "p90_us", "p99_us", "mean_us", "max_us")}

    with Fleet(h, results, "latency", [(n, make(n)) for n in PEER_ORDER]) as fleet:
        for name, samples in fleet.measure(cfg.lat_runs, run).items():
            results.setdefault(name, {})["latency"] = {
                "size": 64, "round_trips": cfg.lat_count, "runs": samples,
                "median_p50_us": median(s["p50_us"] for s in samples),
                "median_p99_us": median(s["p99_us"] for s in samples)}
            log(f"latency {name:9}: p50 {results[name]['latency']['median_p50_us']:.1f} us, "
                f"p99 {results[name]['latency']['median_p99_us']:.1f} us")
    base = dig(results, "plain", ["latency"])
    for name in TUNNELS:
        lat = dig(results, name, ["latency"])
        if base is not None and lat is not None:
            lat["added_p50_us"] = lat["median_p50_us"] - base["median_p50_us"]
            lat["added_p99_us"] = lat["median_p99_us"] - base["median_p99_us"]


def memory_run(h, pki, cfg, name, steps):
    with Setup(h, make_peer(name, h, pki), "echo") as setup:
        tool = os.path.join(h.build, "bench", "idle_conns")
        # Warm-up: lazily built state (OpenSSL tables, first pools) is not per tunnel.
        status, out, err = run_tool([tool, "--connect", f"127.0.0.1:{setup.entry}", "--steps", "64"],
                                    timeout=60)
        if status != 0:
            raise BenchError(f"idle_conns warm-up through {name} failed: {err[-500:]}")
        time.sleep(1.0)
        base = memory_kb(setup.roots)
        proc = subprocess.Popen([tool, "--connect", f"127.0.0.1:{setup.entry}",
                                 "--steps", ",".join(map(str, steps)), "--timeout", "180"],
                                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                text=True, start_new_session=True)
        points = []
        try:
            for step in steps:
                line = proc.stdout.readline()
                if not line.startswith("established"):
                    raise BenchError(f"idle_conns through {name} stopped before {step}: {proc.stderr.read()[-600:]}")
                # Idle means idle: tunnels may keep buffers for a moment after traffic.
                time.sleep(2.5)
                rss, pss, count = memory_kb(setup.roots)
                points.append({"tunnels": step, "setup_s": float(key_values(line)["seconds"]),
                               "rss_kb": rss, "pss_kb": pss, "processes": count,
                               "pss_growth_mb_per_1000": (pss - base[1]) / 1024 / (step / 1000),
                               "rss_growth_mb_per_1000": (rss - base[0]) / 1024 / (step / 1000)})
                proc.stdin.write("\n")
                proc.stdin.flush()
            proc.stdin.close()
            proc.wait(timeout=60)
        finally:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
    return {"base_rss_kb": base[0], "base_pss_kb": base[1], "points": points}


def memory(h, pki, cfg, results):
    for name in TUNNELS:
        guarded(results, name, "memory", memory_peer, h, pki, cfg, results, name)


def memory_peer(h, pki, cfg, results, name):
    # Every run measures the first step; the last run goes on to the top step,
    # which takes a minute or more for the peers with a thread or a process per
    # connection (and is as repeatable: the figures are counts of pages).
    runs = []
    for i in range(cfg.mem_runs):
        steps = cfg.mem_steps if i == cfg.mem_runs - 1 else cfg.mem_steps[:1]
        runs.append(memory_run(h, pki, cfg, name, steps))
    mem = {"runs": runs, "measure": "PSS summed over all processes of both tunnel ends"}
    for i, step in enumerate(cfg.mem_steps):
        points = [r["points"][i] for r in runs if len(r["points"]) > i]
        mem[f"pss_mb_per_1000_at_{step}"] = median(p["pss_growth_mb_per_1000"] for p in points)
        mem[f"rss_mb_per_1000_at_{step}"] = median(p["rss_growth_mb_per_1000"] for p in points)
        mem[f"runs_at_{step}"] = len(points)
    results.setdefault(name, {})["memory"] = mem
    log(f"memory {name:9}: " + ", ".join(
        f"{mem[f'pss_mb_per_1000_at_{s}']:.2f} MB PSS per 1000 at {s}" for s in cfg.mem_steps))


def openssl_ceiling(cfg):
    """Handshakes/s one core could do if a full mTLS handshake cost only its public-key
    operations: server side = 1 ECDSA P-256 sign (CertificateVerify), 2 ECDSA P-256
    verifies (the client's CertificateVerify and the client leaf's signature by the
    root; the trusted root's self-signature is not checked), 1 ECDH derive in the
    negotiated group. Key-share generation and everything else are left out, so the
    ceiling is optimistic."""
    out = subprocess.run(["openssl", "speed", "-seconds", str(cfg.speed_seconds), "-mr", "ecdsap256",
                          "ecdhx25519", "ecdhp256"], capture_output=True, text=True, check=True).stdout
    sign = verify = None
    ecdh = {}
    for line in out.splitlines():
        parts = line.split(":")
        if parts[0] == "+F4" and parts[2] == "256":
            sign, verify = float(parts[3]), float(parts[4])
        elif parts[0] == "+F5":
            ecdh["X25519" if parts[2] == "253" else "prime256v1"] = float(parts[3])
    if sign is None or "X25519" not in ecdh:
        raise BenchError(f"cannot parse openssl speed output:\n{out}")
    return {"ecdsa_p256_sign_per_s": sign, "ecdsa_p256_verify_per_s": verify, "ecdh_per_s": ecdh,
            "server_ops_per_handshake": {"ecdsa_sign": 1, "ecdsa_verify": 2, "ecdh_derive": 1}}


def ceiling_for(speed, group, verifies=2):
    """VERIFIES: 2 when the server checks the client chain's signature too, 1 when
    ktlstun remembered the chain and checks only the client's CertificateVerify."""
    ecdh = speed["ecdh_per_s"].get(group) or speed["ecdh_per_s"]["X25519"]
    us = 1e6 / speed["ecdsa_p256_sign_per_s"] + verifies * 1e6 / speed["ecdsa_p256_verify_per_s"] + 1e6 / ecdh
    return {"group": group, "us_per_handshake": us, "handshakes_per_s_per_core": 1e6 / us,
            "formula": f"1 / (1/{speed['ecdsa_p256_sign_per_s']:.0f} + {verifies}/{speed['ecdsa_p256_verify_per_s']:.0f}"
                       f" + 1/{ecdh:.0f}) = 1 / {us:.1f} us = {1e6 / us:.0f} handshakes/s per core"}


# ------------------------------------------------------------------ report ----

def command_version(argv, pattern):
    try:
        text = subprocess.run(argv, capture_output=True, text=True, timeout=10)
        text = text.stdout + text.stderr
    except (OSError, subprocess.TimeoutExpired):
        return "unknown"
    m = re.search(pattern, text)
    return m.group(1) if m else "unknown"


def cpu_model():
    """The first "model name" of /proc/cpuinfo, "unknown" without one."""
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return "unknown"


def machine_info(build):
    model = cpu_model()
    mem_kb = 0
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("MemTotal:"):
                mem_kb = int(line.split()[1])
    return {
        "nproc": os.cpu_count(), "cpu_model": model, "memory_gb": round(mem_kb / 1024 / 1024, 1),
        "kernel": platform.release(),
        "versions": {
            "ktlstun": command_version([os.path.join(build, "ktlstund"), "-V"], r"ktlstun\S*\s+(\S+)"),
            "openssl": command_version(["openssl", "version"], r"OpenSSL (\S+)"),
            "stunnel4": command_version(["stunnel4", "-version"], r"stunnel (\S+)"),
            "haproxy": command_version(["haproxy", "-v"], r"version (\S+)"),
            "socat": command_version(["socat", "-V"], r"socat version (\S+)"),
            "iperf3": command_version(["iperf3", "--version"], r"iperf (\S+)"),
        }}


def fmt(value, digits=1):
    if value is None:
        return "–"
    if abs(value) >= 100:
        return f"{value:,.0f}"
    return f"{value:.{digits}f}"


def dig(results, name, path):
    node = results.get(name, {})
    for key in path:
        if not isinstance(node, dict) or key not in node:
            return None
        node = node[key]
    return node


def rows(results, cfg):
    out = [
        ("Throughput, 1 stream (Gbit/s)", "higher", ["throughput_1", "median_gbit_s"], 2),
        ("Throughput, 8 streams (Gbit/s)", "higher", ["throughput_8", "median_gbit_s"], 2),
        ("Handshakes/s, concurrency 1", "higher", ["handshakes_1", "median_rate"], 0),
        ("Handshakes/s, concurrency 64", "higher", ["handshakes_64", "median_rate"], 0),
        ("Handshakes per server CPU-second (c=64)", "higher", ["handshakes_64", "median_per_server_cpu_s"], 0),
        ("Latency p50, 64 B round trip (µs)", "lower", ["latency", "median_p50_us"], 1),
        ("Latency p50 added by the tunnels (µs)", "lower", ["latency", "added_p50_us"], 1),
        ("Latency p99, 64 B round trip (µs)", "lower", ["latency", "median_p99_us"], 1),
        ("Latency p99 added by the tunnels (µs)", "lower", ["latency", "added_p99_us"], 1),
    ]
    for step in cfg.mem_steps:
        out.append((f"Memory per 1,000 idle tunnels at {step:,} (MB PSS, both ends)", "lower",
                    ["memory", f"pss_mb_per_1000_at_{step}"], 2))
    out += [
        ("CPU per GB relayed, user (s)", "lower", ["cpu_per_gb", "median_user_s"], 2),
        ("CPU per GB relayed, sys (s)", "lower", ["cpu_per_gb", "median_sys_s"], 2),
        ("CPU per GB relayed, total (s)", "lower", ["cpu_per_gb", "median_total_s"], 2),
    ]
    return out


def ratio(a, b):
    if a is None or b is None or b == 0:
        return None
    return a / b


def evaluate_targets(results, speed_ceiling, remembered_ceiling=None):
    k = results.get("ktlstun", {})
    targets = []

    def add(name, met, detail):
        targets.append({"target": name, "met": met, "detail": detail})

    tp = {n: dig(results, n, ["throughput_1", "median_gbit_s"]) for n in PEER_ORDER}
    if tp["ktlstun"] and tp["stunnel4"]:
        r = tp["ktlstun"] / tp["stunnel4"]
        add("Throughput, 1 stream ≥ 1.5× stunnel4", r >= 1.5, f"{r:.2f}× ({tp['ktlstun']:.2f} vs {tp['stunnel4']:.2f} Gbit/s)")
    for peer in ("haproxy", "socat"):
        if tp["ktlstun"] and tp[peer]:
            r = tp["ktlstun"] / tp[peer]
            add(f"Throughput, 1 stream ahead of {peer}", r > 1.0, f"{r:.2f}× ({tp['ktlstun']:.2f} vs {tp[peer]:.2f} Gbit/s)")
    hs = {n: dig(results, n, ["handshakes_64", "median_rate"]) for n in TUNNELS}
    peers = {n: v for n, v in hs.items() if n != "ktlstun" and v}
    if hs["ktlstun"] and peers:
        best = max(peers, key=peers.get)
        r = hs["ktlstun"] / peers[best]
        per = {n: dig(results, n, ["handshakes_64", "median_per_server_cpu_s"]) for n in TUNNELS}
        per_peers = {n: v for n, v in per.items() if n != "ktlstun" and v}
        per_note = ""
        if per["ktlstun"] and per_peers:
            best_cpu = max(per_peers, key=per_peers.get)
            per_note = (f"; per server CPU-second {per['ktlstun'] / per_peers[best_cpu]:.2f}× the best, "
                        f"{best_cpu} ({per['ktlstun']:.0f} vs {per_peers[best_cpu]:.0f})")
        add("Handshakes at concurrency 64 ≥ 1.3× the best peer", r >= 1.3,
            f"{r:.2f}× the best peer, {best} ({hs['ktlstun']:.0f} vs {peers[best]:.0f}/s){per_note}")
        full = dig(results, "ktlstun", ["handshakes_64_verify_cache_off"])
        if full:
            r_full = full["median_rate"] / peers[best]
            add("Handshakes at concurrency 64 ≥ 1.3× the best peer, every chain verified (verify_cache = 0)",
                r_full >= 1.3, f"{r_full:.2f}× the best peer, {best} ({full['median_rate']:.0f} vs {peers[best]:.0f}/s)")
    per_cpu = dig(results, "ktlstun", ["handshakes_64_verify_cache_off", "median_per_server_cpu_s"])
    if per_cpu and speed_ceiling:
        r = per_cpu / speed_ceiling["handshakes_per_s_per_core"]
        add("Handshakes within 70% of the openssl speed limit (per server core, every chain verified)", r >= 0.7,
            f"{100 * r:.0f}% ({per_cpu:.0f} handshakes per server CPU-second with verify_cache = 0 vs a ceiling of "
            f"{speed_ceiling['handshakes_per_s_per_core']:.0f}/s per core)")
    per_cpu = dig(results, "ktlstun", ["handshakes_64", "median_per_server_cpu_s"])
    if per_cpu and remembered_ceiling:
        r = per_cpu / remembered_ceiling["handshakes_per_s_per_core"]
        add("Handshakes within 70% of the openssl speed limit (per server core, chain remembered)", r >= 0.7,
            f"{100 * r:.0f}% ({per_cpu:.0f} handshakes per server CPU-second vs a ceiling of "
            f"{remembered_ceiling['handshakes_per_s_per_core']:.0f}/s per core for one verify)")
    lat = {n: dig(results, n, ["latency", "added_p50_us"]) for n in TUNNELS}
    peers = {n: v for n, v in lat.items() if n != "ktlstun" and v is not None}
    if lat["ktlstun"] is not None and peers:
        best = min(peers, key=peers.get)
        add("Latency p50 added ≤ the best peer's", lat["ktlstun"] <= peers[best],
            f"{lat['ktlstun']:.1f} µs vs {peers[best]:.1f} µs ({best})")
    mem_keys = [key for key in k.get("memory", {}) if key.startswith("pss_mb_per_1000_at_")]
    for key in mem_keys:
        mem = {n: dig(results, n, ["memory", key]) for n in TUNNELS}
        peers = {n: v for n, v in mem.items() if n != "ktlstun" and v is not None}
        if mem["ktlstun"] is not None and peers:
            best = min(peers, key=peers.get)
            at = key.rsplit("_", 1)[1]
            add(f"Memory per idle userspace tunnel ≤ the best peer (at {int(at):,})", mem["ktlstun"] <= peers[best],
                f"{mem['ktlstun']:.2f} vs {peers[best]:.2f} MB per 1,000 ({best}); "
                f"{mem['ktlstun'] * 1024 / 1000:.1f} KiB per tunnel, both ends")
    w = k.get("handshakes_workers", {})
    if w.get("1", {}).get("median_rate") and w.get("2", {}).get("median_rate"):
        r = w["2"]["median_rate"] / w["1"]["median_rate"]
        add("Handshakes with 2 workers ≥ 1.8× 1 worker (c=64)", r >= 1.8,
            f"{r:.2f}× ({w['2']['median_rate']:.0f} vs {w['1']['median_rate']:.0f}/s)")
    return targets


def markdown(doc, cfg):
    results = doc["results"]
    m = doc["machine"]
    lines = [f"# ktlstun benchmark — {doc['date']}", "",
             f"Machine: {m['nproc']} CPUs ({m['cpu_model']}), {m['memory_gb']} GB RAM, Linux {m['kernel']}.  ",
             "Versions: " + ", ".join(f"{k} {v}" for k, v in m["versions"].items()) + ".  ",
             f"Every peer: mTLS, ECDSA P-256, TLS 1.3, {CIPHERSUITE}, no resumption, loopback; "
             f"load tool → client tunnel → server tunnel → sink. Medians of several runs "
             f"(see latest.json for every run). `make bench` took {doc['elapsed_s']:.0f} s; "
             f"load average when it started: {doc['load_average_at_start'][0]:.2f}.", ""]
    present = [n for n in PEER_ORDER if n in results]
    others = [n for n in present if n != "ktlstun"]
    head = ["Figure", *[LABEL[n] for n in present], *[f"ktlstun ÷ {LABEL[n]}" for n in others]]
    lines += ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for title, better, path, digits in rows(results, cfg):
        values = {n: dig(results, n, path) for n in present}
        if all(v is None for v in values.values()):
            continue
        cells = [f"{title} ({better} is better)"]
        cells += [fmt(values[n], digits) for n in present]
        for n in others:
            r = ratio(values["ktlstun"], values[n])
            cells.append("–" if r is None or (values[n] is not None and values[n] <= 0) else f"{r:.2f}×")
        lines.append("| " + " | ".join(cells) + " |")
    lines.append("")
    w = dig(results, "ktlstun", ["handshakes_workers"])
    if w:
        r1, r2 = w["1"]["median_rate"], w["2"]["median_rate"]
        lines += [f"ktlstun server, concurrency 64: workers = 1 → {r1:.0f} handshakes/s, "
                  f"workers = 2 → {r2:.0f} handshakes/s ({r2 / r1:.2f}×). Per server CPU-second: "
                  f"{fmt(w['1']['median_per_server_cpu_s'], 0)} and {fmt(w['2']['median_per_server_cpu_s'], 0)}.", ""]
    full = dig(results, "ktlstun", ["handshakes_64_verify_cache_off"])
    if full:
        peers64 = {n: dig(results, n, ["handshakes_64", "median_rate"]) for n in others}
        lines += [f"ktlstun server with `verify_cache = 0` (every client chain verified in full, as the peers do), "
                  f"concurrency 64: {full['median_rate']:.0f} handshakes/s ("
                  + ", ".join(f"{full['median_rate'] / v:.2f}× {LABEL[n]}" for n, v in peers64.items() if v)
                  + f"), {fmt(full['median_per_server_cpu_s'], 0)} per server CPU-second. The default "
                  "(`verify_cache = 60s`) skips the chain's signature check when the same client reconnects, "
                  "which is what the load tool does.", ""]
    neg = {n: dig(results, n, ["handshakes_64", "negotiated"]) for n in TUNNELS}
    if any(neg.values()):
        lines += ["Negotiated with each server side: " + "; ".join(
            f"{LABEL[n]} {v['protocol']} {v['cipher']} {v['group']}" for n, v in neg.items() if v) + ".", ""]
    if doc.get("openssl_speed"):
        s = doc["openssl_speed"]
        c = doc["ceiling"]
        lines += ["## Handshake ceiling from `openssl speed`", "",
                  f"Per full mTLS handshake the server signs once (ECDSA P-256 CertificateVerify), verifies "
                  f"twice (the client's CertificateVerify and the client certificate's signature by the root — the "
                  f"trusted root's own signature is not checked) and derives one ECDH secret in the negotiated "
                  f"group ({c['group']}). `openssl speed -seconds {cfg.speed_seconds} ecdsap256 ecdhx25519 ecdhp256` on "
                  f"one core: sign {s['ecdsa_p256_sign_per_s']:.0f}/s, verify {s['ecdsa_p256_verify_per_s']:.0f}/s, "
                  + ", ".join(f"ECDH {g} {v:.0f}/s" for g, v in s["ecdh_per_s"].items()) + ".", "",
                  f"    ceiling = {c['formula']}", "",
                  *([f"With the client's chain remembered (`verify_cache`, the default) the server verifies once:", "",
                     f"    ceiling = {doc['ceiling_chain_remembered']['formula']}", ""]
                    if doc.get("ceiling_chain_remembered") else []),
                  "Key-share generation, HKDF, hashing, certificate parsing and the TCP work are left out, "
                  "so no real handshake reaches it.", ""]
    lines += ["## Targets", ""]
    for t in doc["targets"]:
        lines.append(f"- {'met' if t['met'] else '**missed**'}: {t['target']} — {t['detail']}")
    errors = [(n, f, e) for n in results for f, e in results[n].get("errors", {}).items()]
    if errors:
        lines += ["", "## Failed measurements", ""]
        lines += [f"- {LABEL.get(n, n)}, {f}: {e.splitlines()[0] if e else ''}" for n, f, e in errors]
    lines += ["", "Notes: the load tools share the 2 CPUs with the tunnels they measure; handshakes per server "
              "CPU-second is the figure that does not depend on that. Memory is PSS (proportional set size, "
              "so socat's forked children are not charged their parent's shared pages once each) summed over "
              "every process of both tunnel ends, growth from a warmed-up idle state. CPU per GB covers both "
              "tunnel ends (encrypt and decrypt) during the 1-stream runs.", ""]
    return "\n".join(lines)


def chart(doc, cfg, path, work):
    """Six panels of clustered bars (gnuplot, PNG). Returns False when there is nothing to draw."""
    results = doc["results"]
    ceiling = doc.get("ceiling")
    panels = [
        ("throughput.dat", "Throughput (Gbit/s, higher is better)", PEER_ORDER, False,
         [("1 stream", ["throughput_1", "median_gbit_s"]), ("8 streams", ["throughput_8", "median_gbit_s"])]),
        ("handshakes.dat", "Full mTLS handshakes/s (higher is better)", TUNNELS, False,
         [("concurrency 1", ["handshakes_1", "median_rate"]), ("concurrency 64", ["handshakes_64", "median_rate"])]),
        ("per_cpu.dat", "Handshakes per server CPU-second, c=64 (higher is better)", TUNNELS, False,
         [("per server CPU-second", ["handshakes_64", "median_per_server_cpu_s"])]),
        ("latency.dat", "Latency added by the tunnel pair, 64 B round trip (µs, log scale, lower is better)", TUNNELS, True,
         [("p50", ["latency", "added_p50_us"]), ("p99", ["latency", "added_p99_us"])]),
        ("memory.dat", "MB per 1,000 idle tunnels, PSS of both ends (log scale, lower is better)", TUNNELS, True,
         [(f"at {s:,}", ["memory", f"pss_mb_per_1000_at_{s}"]) for s in cfg.mem_steps]),
        ("cpu.dat", "CPU seconds per GB relayed, both ends (lower is better)", TUNNELS, False,
         [("user", ["cpu_per_gb", "median_user_s"]), ("sys", ["cpu_per_gb", "median_sys_s"])]),
    ]
    m = doc["machine"]
    title = (f"ktlstun vs peers, {doc['date'][:10]}: {m['nproc']} CPUs ({m['cpu_model']}), Linux {m['kernel']}, "
             f"OpenSSL {m['versions']['openssl']}; mTLS ECDSA P-256, TLS 1.3 AES-128-GCM, loopback, medians")
    script = [
        'set terminal pngcairo size 1500,900 font "DejaVu Sans,10"',
        f"set output '{path}'",
        'set datafile missing "NaN"',
        "set style data histogram", "set style histogram cluster gap 1",
        "set style fill solid 0.85 border -1", "set boxwidth 0.9",
        "set grid ytics", "set key top right horizontal", "set offsets 0,0,graph 0.15,0",
        "set xtics nomirror", "set ytics nomirror",
        'fmt(v) = v >= 100 ? sprintf("%.0f", v) : v >= 10 ? sprintf("%.1f", v) : sprintf("%.2f", v)',
        f'set multiplot layout 2,3 title "{title}"',
    ]
    drawn = 0
    for datafile, panel_title, names, log_scale, series in panels:
        data = []
        for n in names:
            vals = [dig(results, n, p) for _, p in series]
            if n in results and any(v is not None for v in vals):
                data.append(f'"{LABEL[n]}" ' + " ".join("NaN" if v is None else f"{max(v, 0):.6g}" for v in vals))
        if not data:
            continue
        dpath = os.path.join(work, datafile)
        with open(dpath, "w") as f:
            f.write("\n".join(data) + "\n")
        script.append(f'set title "{panel_title}"')
        script.append("set logscale y" if log_scale else "unset logscale y")
        script.append("set yrange [1:*]" if log_scale else "set yrange [0:*]")
        script.append("unset arrow; unset label")
        if datafile == "per_cpu.dat" and ceiling:
            c = ceiling["handshakes_per_s_per_core"]
            script.append(f"set yrange [0:{c * 1.15:.0f}]")
            script.append(f"set arrow from graph 0, first {c:.0f} to graph 1, first {c:.0f} nohead dt 2 lw 2 lc rgb 'red'")
            script.append(f"set label 'openssl speed ceiling: {c:.0f}/s per core' at graph 0.03, first {c * 1.04:.0f} "
                          "tc rgb 'red' font ',9'")
        plots = []
        width = 1.0 / (len(series) + 1)
        for i, (label, _) in enumerate(series):
            plots.append(f"'{dpath}' using {i + 2}:xtic(1) title '{label}'")
        for i, _ in enumerate(series):
            col = i + 2
            offset = (i - (len(series) - 1) / 2) * width
            plots.append(f"'{dpath}' using ($0+{offset:.3f}):{col}:(fmt(${col})) "
                         f"with labels offset 0,0.6 font \",8\" notitle")
        script.append("plot " + ", ".join(plots))
        drawn += 1
    script.append("unset multiplot")
    if drawn == 0:
        return False
    gp = os.path.join(work, "chart.gp")
    with open(gp, "w") as f:
        f.write("\n".join(script) + "\n")
    subprocess.run(["gnuplot", gp], check=True)
    return True


# -------------------------------------------------------------------- main ----

def interrupt_on_sigterm():
    """SIGTERM ends the run as Ctrl-C does (KeyboardInterrupt), so its cleanup runs."""
    def on_signal(signum, frame):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_signal)


def parse_args():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--build", required=True)
    ap.add_argument("--results", required=True)
    ap.add_argument("--only", default="throughput,handshakes,latency,memory")
    ap.add_argument("--quick", action="store_true")
    cfg = ap.parse_args()
    # Processes run in the work directory: every path they get must be absolute.
    cfg.build = os.path.abspath(cfg.build)
    cfg.results = os.path.abspath(cfg.results)
    cfg.only = set(cfg.only.split(","))
    # Each idle tunnel holds two descriptors in each end's process (stunnel and
    # haproxy are one process per end), and a process may not go past the hard
    # RLIMIT_NOFILE unless it has CAP_SYS_RESOURCE. stunnel is the strictest: it
    # refuses clients past RLIMIT_NOFILE * 125 / 256.
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    cfg.fd_limit = hard
    top = 10000 if hard == resource.RLIM_INFINITY else min(10000, hard * 125 // 256 // 100 * 100)
    if cfg.quick:
        cfg.tp_seconds, cfg.tp_runs_1, cfg.tp_runs_8 = 1, 1, 1
        cfg.hs_seconds, cfg.hs_runs = 1, 1
        cfg.lat_count, cfg.lat_runs = 1000, 1
        cfg.mem_steps, cfg.mem_runs = [200, min(1000, top)], 1
        cfg.speed_seconds = 1
    else:
        cfg.tp_seconds, cfg.tp_runs_1, cfg.tp_runs_8 = 2, 5, 3
        cfg.hs_seconds, cfg.hs_runs = 2, 5
        cfg.lat_count, cfg.lat_runs = 10000, 5
        cfg.mem_steps, cfg.mem_runs = [1000, top], 3
        cfg.speed_seconds = 1
    Haproxy.MAXCONN = cfg.mem_steps[-1] + 100
    return cfg


def main():
    cfg = parse_args()
    started = time.monotonic()
    work = tempfile.mkdtemp(prefix="ktlstun-bench.")
    h = Harness(cfg.build, work)
    interrupt_on_sigterm()
    results = {}
    doc = {"date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
           "machine": machine_info(cfg.build), "load_average_at_start": os.getloadavg(), "config": {
               k: getattr(cfg, k) for k in ("tp_seconds", "tp_runs_1", "tp_runs_8", "hs_seconds", "hs_runs",
                                            "lat_count", "lat_runs", "mem_steps", "mem_runs", "quick",
                                            "fd_limit")},
           "results": results}
    status = 1
    try:
        log(f"work dir {work}")
        pki = make_pki(work)
        if "handshakes" in cfg.only:
            doc["openssl_speed"] = openssl_ceiling(cfg)
        for figure, fn in (("throughput", throughput), ("handshakes", handshakes),
                           ("latency", latency), ("memory", memory)):
            if figure in cfg.only:
                log(f"== {figure}")
                fn(h, pki, cfg, results)
        if "openssl_speed" in doc:
            group = dig(results, "ktlstun", ["handshakes_64", "negotiated", "group"]) or "X25519"
            doc["ceiling"] = ceiling_for(doc["openssl_speed"], group)
            doc["ceiling_chain_remembered"] = ceiling_for(doc["openssl_speed"], group, verifies=1)
        doc["targets"] = evaluate_targets(results, doc.get("ceiling"), doc.get("ceiling_chain_remembered"))
        doc["elapsed_s"] = time.monotonic() - started
        os.makedirs(cfg.results, exist_ok=True)
        with open(os.path.join(cfg.results, "latest.json"), "w") as f:
            json.dump(doc, f, indent=1)
        md = markdown(doc, cfg)
        if chart(doc, cfg, os.path.join(cfg.results, "chart.png"), work):
            md += "\n![ktlstun benchmark](chart.png)\n"
        with open(os.path.join(cfg.results, "latest.md"), "w") as f:
            f.write(md)
        print(md)
        log(f"results in {cfg.results}/latest.md, latest.json, chart.png ({doc['elapsed_s']:.0f} s)")
        status = 0
    except BenchError as e:
        log(f"bench failed: {e}")
        log(f"logs kept in {work}")
        work = None
    except KeyboardInterrupt:
        log("interrupted")
    finally:
        h.stop_all()
        if work is not None and status == 0:
            shutil.rmtree(work, ignore_errors=True)
    return status


if __name__ == "__main__":
    sys.exit(main())
