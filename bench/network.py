#!/usr/bin/env python3
"""make bench-network: ktlstun network tunnels against OpenVPN 2.6 (TCP and UDP mode), same run.

Two network namespaces made for the run and removed at its end, joined by a veth pair
(the underlay); the host's own interfaces are never touched:

    ns client: tunnel client end, iperf3 -c, ping  --veth 10.77.0.1/30 ~ 10.77.0.2/30--
    ns hub:    tunnel hub end, iperf3 -s

Every peer: mutual TLS with ECDSA P-256 certificates, TLS 1.3 only (control channel:
TLS_AES_128_GCM_SHA256), AES-128-GCM for the packets, a TUN device with MTU 1400 at
each end, the userspace data path (ktlstun: ktls = off; OpenVPN: disable-dco), each
with its own defaults for everything else. All tunnels are up together in the same two
namespaces (own ports, devices and subnets) and the runs take turns, so that a burst of
load from elsewhere on the machine lands on all of them alike.

Figures:
  1. TCP throughput of one stream: iperf3 -c HUB_TUNNEL_ADDRESS -t SECONDS, median of RUNS
     (the underlay alone, without a tunnel, as the reference)
  2. UDP throughput at <= 1% loss: iperf3 -u -l 1300 at rising rates (50 Mbit/s, then
     1.5x a step, the tunnels taking turns at each rate) until a tunnel loses more than
     1% at two rates in a row; the best received rate with loss <= 1%
  3. round trip: ping -i 0.01 through the tunnel, COUNT in all in PING_TURNS turns (the
     tunnels taking turns), p50 and p99
  4. CPU seconds per GB: utime + stime of each end's processes (ktlstund: the
     supervisor and its workers) over the TCP runs, divided by the GB received

Results: RESULTS/network.json (every run), RESULTS/network.md (the table).
"""
import argparse
import datetime
import json
import math
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

sys.dont_write_bytecode = True   # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench import (BenchError, Harness, Peer, command_version, cpu_model, cpu_seconds,  # noqa: E402
                   descendants, dig, fmt, guarded, interrupt_on_sigterm, log, make_pki, median, ratio,
                   run_tool)

CIPHERSUITE = "TLS_AES_128_GCM_SHA256"
MTU = 1400
UDP_LEN = 1300           # fits MTU 1400 with IPv4 and UDP headers
UNDERLAY_CLIENT = "10.77.0.1"
UNDERLAY_HUB = "10.77.0.2"
PEERS = ["ktlstun", "openvpn-tcp", "openvpn-udp"]
LABEL = {"ktlstun": "ktlstun", "openvpn-tcp": "OpenVPN TCP", "openvpn-udp": "OpenVPN UDP",
         "underlay": "underlay (no tunnel)"}
LOSS_LIMIT = 1.0


# --------------------------------------------------------------- namespaces ---

def ip(*args, check=True):
    r = subprocess.run(["ip", *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    if check and r.returncode != 0:
        raise BenchError(f"ip {' '.join(args)}: {r.stderr.strip()}")
    return r


class Namespaces:
    """The client and hub namespaces and the veth pair between them. The pair is made
    inside the client namespace with its peer end created directly in the hub's, so no
    interface ever appears on the host."""

    def __init__(self, prefix):
        self.client = f"{prefix}-client"
        self.hub = f"{prefix}-hub"

    def create(self):
        for ns in (self.client, self.hub):
            ip("netns", "add", ns)
            ip("-n", ns, "link", "set", "lo", "up")
        ip("-n", self.client, "link", "add", "under0", "type", "veth", "peer", "name", "under0",
           "netns", self.hub)
        ip("-n", self.client, "addr", "add", f"{UNDERLAY_CLIENT}/30", "dev", "under0")
        ip("-n", self.hub, "addr", "add", f"{UNDERLAY_HUB}/30", "dev", "under0")
        for ns in (self.client, self.hub):
            ip("-n", ns, "link", "set", "under0", "up")

    def remove(self):
        """Ends what is still running in the namespaces (only this run's processes can
        be there) and deletes them; the veth pair goes with them."""
        for ns in (self.client, self.hub):
            pids = ip("netns", "pids", ns, check=False).stdout.split()
            for pid in pids:
                try:
                    os.kill(int(pid), signal.SIGKILL)
                except (ProcessLookupError, ValueError):
                    pass
            ip("netns", "del", ns, check=False)

    def run(self, ns, argv):
        return ["ip", "netns", "exec", ns, *argv]


# ------------------------------------------------------------------- peers ----

class Tunnel(Peer):
    """One tunnel: its hub end in the hub namespace, its client end in the client
    namespace. `address` is the hub end's tunnel address, where the load goes."""
    address = None

    def __init__(self, h, nsx, pki):
        super().__init__(h, pki)
        self.nsx = nsx
        self.hub_proc = None
        self.client_proc = None

    def roots(self):
        return {"client": [self.client_proc.pid], "hub": [self.hub_proc.pid]}

    def wait_up(self, timeout=20.0):
        """Up when a ping through the tunnel is answered."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for proc in (self.hub_proc, self.client_proc):
                if proc.poll() is not None:
                    raise BenchError(f"{proc.bench_name} exited ({proc.returncode}):\n{self.h.tail(proc)}")
            rc, _, _ = run_tool(self.nsx.run(self.nsx.client, ["ping", "-c", "1", "-W", "1", self.address]), 5)
            if rc == 0:
                return
            time.sleep(0.2)
        raise BenchError(f"{self.name}: no answer through the tunnel after {timeout:.0f} s:\n"
                         f"{self.h.tail(self.hub_proc)}{self.h.tail(self.client_proc)}")


class Ktlstun(Tunnel):
    name = "ktlstun"
    address = "10.79.0.1"

    def start(self, build):
        for role, ns, body in (
                ("hub", self.nsx.hub, f"""mode = server
type = network
listen = {UNDERLAY_HUB}:8443
address = {self.address}/24
client_address = bench-client=10.79.0.2
mtu = {MTU}
cert = {self.file('server.pem')}
key = {self.file('server.key')}
"""), ("client", self.nsx.client, f"""mode = client
type = network
target = {UNDERLAY_HUB}:8443
server_name = localhost
cert = {self.file('client.pem')}
key = {self.file('client.key')}
""")):
            state = os.path.join(self.h.work, f"ktlstun-{role}")
            os.makedirs(state, exist_ok=True)
            conf = self.write(f"ktlstun-{role}.ini", f"""[global]
state_dir = {state}
runtime_dir = {state}

[{"hub" if role == "hub" else "to-hub"}]
{body}ca = {self.file('ca.pem')}
tls_min_version = 1.3
ciphersuites = {CIPHERSUITE}
ktls = off
""")
            proc = self.h.spawn(f"ktlstun-{role}", self.nsx.run(ns, [os.path.join(build, "ktlstund"), "-f",
                                                                      "-c", conf]))
            if role == "hub":
                self.hub_proc = proc
            else:
                self.client_proc = proc
            self.h.wait_ready(proc, log_re=r"notice: ready")
        self.wait_up()
        return self


class OpenVPN(Tunnel):
    """OpenVPN 2.6 in server mode (`server`, topology subnet) and a `client`: the
    usual deployment, a hub handing out addresses."""

    def __init__(self, h, nsx, pki, proto):
        super().__init__(h, nsx, pki)
        self.proto = proto
        self.name = f"openvpn-{proto}"
        self.net = "10.78.1" if proto == "tcp" else "10.78.2"
        self.port = 1194 if proto == "tcp" else 1195
        self.address = f"{self.net}.1"

    def common(self):
        return f"""dev ov{self.proto}0
dev-type tun
tun-mtu {MTU}
ca {self.file('ca.pem')}
tls-version-min 1.3
tls-ciphersuites {CIPHERSUITE}
data-ciphers AES-128-GCM
disable-dco
verb 1
"""

    def start(self, build):
        hub_conf = self.write(f"{self.name}-hub.conf", self.common() + f"""proto {'tcp-server' if self.proto == 'tcp' else 'udp'}
local {UNDERLAY_HUB}
port {self.port}
topology subnet
server {self.net}.0 255.255.255.0
cert {self.file('server.pem')}
key {self.file('server.key')}
dh none
""")
        client_conf = self.write(f"{self.name}-client.conf", self.common() + f"""client
proto {'tcp-client' if self.proto == 'tcp' else 'udp'}
remote {UNDERLAY_HUB} {self.port}
nobind
cert {self.file('client.pem')}
key {self.file('client.key')}
remote-cert-eku "TLS Web Server Authentication"
verify-x509-name localhost name
""")
        self.hub_proc = self.h.spawn(f"{self.name}-hub", self.nsx.run(self.nsx.hub, ["openvpn", "--config", hub_conf]))
        self.h.wait_ready(self.hub_proc, log_re=r"Initialization Sequence Completed")
        self.client_proc = self.h.spawn(f"{self.name}-client",
                                        self.nsx.run(self.nsx.client, ["openvpn", "--config", client_conf]))
        self.h.wait_ready(self.client_proc, log_re=r"Initialization Sequence Completed", timeout=20.0)
        self.wait_up()
        return self


# ----------------------------------------------------------------- figures ----

IPERF_PORTS = iter(range(5300, 6300))


def iperf(h, nsx, args, timeout):
    """One iperf3 client run against a server of its own (iperf3 -s -1 in the hub
    namespace, on a new port), JSON parsed: a server that has just run a UDP test may
    still be finishing it when the next one comes and reset or refuse it. A run that
    fails is tried once more."""
    for attempt in (1, 2):
        port = next(IPERF_PORTS)
        server = h.spawn(f"iperf3-server-{port}", nsx.run(nsx.hub, ["iperf3", "-s", "-1", "-p", str(port),
                                                                    "--forceflush"]))
        try:
            h.wait_ready(server, log_re=r"Server listening")
            rc, out, err = run_tool(nsx.run(nsx.client, ["iperf3", "-J", "-p", str(port), *args]), timeout)
        finally:
            h.stop(server)
        try:
            doc = json.loads(out)
        except ValueError:
            doc = {"error": f"exit {rc}, no JSON: {(out + err)[-400:]}"}
        if rc == 0 and "error" not in doc:
            return doc
        if attempt == 1:
            log(f"iperf3 {' '.join(args)}: {doc.get('error', f'exit {rc}')}; once more")
    raise BenchError(f"iperf3 {' '.join(args)}: {doc.get('error', f'exit {rc}')}")


def tcp_run(h, nsx, address, seconds, tunnel=None):
    """One stream for SECONDS; with TUNNEL also the CPU of each end over the run."""
    before = {end: cpu_seconds(pids) for end, pids in tunnel.roots().items()} if tunnel else {}
    doc = iperf(h, nsx, ["-c", address, "-t", str(seconds)], seconds + 20)
    received = doc["end"]["sum_received"]
    sample = {"gbit_s": received["bits_per_second"] / 1e9, "bytes": received["bytes"],
              "retransmits": doc["end"]["sum_sent"].get("retransmits")}
    if tunnel:
        gb = received["bytes"] / 1e9
        sample["cpu_per_gb"], sample["user_sys_per_gb"] = {}, {}
        for end, pids in tunnel.roots().items():
            user, system = cpu_seconds(pids)
            user, system = user - before[end][0], system - before[end][1]
            sample["cpu_per_gb"][end] = (user + system) / gb
            sample["user_sys_per_gb"][end] = [user / gb, system / gb]
        sample["cpu_per_gb"]["both"] = sample["cpu_per_gb"]["client"] + sample["cpu_per_gb"]["hub"]
        # How many processes each end's figure covers (ktlstund: supervisor + workers).
        sample["processes"] = {end: len(descendants(pids)[0]) for end, pids in tunnel.roots().items()}
    return sample


def udp_run(h, nsx, address, mbit_s, seconds):
    doc = iperf(h, nsx, ["-c", address, "-u", "-l", str(UDP_LEN), "-b", f"{mbit_s:.0f}M", "-t", str(seconds)],
                seconds + 20)
    s = doc["end"]["sum"]
    loss = s.get("lost_percent", 0.0)
    packets = s.get("packets", 0)
    lost = s.get("lost_packets", 0)
    received_mbit = (packets - lost) * UDP_LEN * 8 / s["seconds"] / 1e6 if s.get("seconds") else 0.0
    return {"offered_mbit_s": mbit_s, "sent_mbit_s": s["bits_per_second"] / 1e6, "loss_percent": loss,
            "received_mbit_s": received_mbit}


def ping_times(nsx, address, count):
    """COUNT pings 10 ms apart; the round trips answered, in ms."""
    rc, out, err = run_tool(nsx.run(nsx.client, ["ping", "-n", "-i", "0.01", "-c", str(count), address]),
                            count * 0.05 + 20)
    times = [float(t.split("=", 1)[1]) for t in out.split() if t.startswith("time=")]
    if rc != 0 or len(times) < count * 0.99:
        raise BenchError(f"ping {address}: {len(times)} of {count} answered: {err[-300:]}")
    return times


def ping_summary(times, count):
    times = sorted(times)

    def pct(p):
        return times[max(0, math.ceil(p / 100 * len(times)) - 1)]

    return {"p50_us": pct(50) * 1000, "p99_us": pct(99) * 1000, "answered": len(times), "count": count}


# --------------------------------------------------------------------- run ----

def measure(h, nsx, pki, cfg, results):
    tunnels = {}
    for name in PEERS:
        t = Ktlstun(h, nsx, pki) if name == "ktlstun" else OpenVPN(h, nsx, pki, name.split("-")[1])
        log(f"starting {LABEL[name]}")
        if guarded(results, name, "start", t.start, cfg.build) is not None:
            tunnels[name] = t
        else:
            # The reason reads better without the temporary directory's name.
            results[name]["errors"]["start"] = results[name]["errors"]["start"].replace(h.work + "/", "")
            for proc in (t.client_proc, t.hub_proc):
                if proc is not None:
                    h.stop(proc)
    addresses = {"underlay": UNDERLAY_HUB, **{n: t.address for n, t in tunnels.items()}}
    # Round trips first, on tunnels no bulk transfer has filled yet.
    ping_figure(nsx, cfg, results, addresses)
    tcp_figure(h, nsx, cfg, results, addresses, tunnels)
    udp_figure(h, nsx, cfg, results, addresses, tunnels)


PING_TURNS = 6


def ping_figure(nsx, cfg, results, addresses):
    """The pings of each tunnel in PING_TURNS turns, the tunnels taking turns (the
    first one changing at each), so that a burst of load from elsewhere on the machine
    lands on all of them alike; p50 and p99 over all of a tunnel's round trips."""
    log(f"== ping, {cfg.ping_count} round trips in {PING_TURNS} turns")
    order = list(addresses)
    times = {name: [] for name in order}
    per_turn = max(1, cfg.ping_count // PING_TURNS)
    for turn in range(PING_TURNS):
        for name in order[turn % len(order):] + order[:turn % len(order)]:
            if name not in times:
                continue
            t = guarded(results, name, "ping", ping_times, nsx, addresses[name], per_turn)
            if t is None:
                del times[name]
                continue
            times[name] += t
    for name, ts in times.items():
        p = ping_summary(ts, per_turn * PING_TURNS)
        results.setdefault(name, {})["ping"] = p
        log(f"{LABEL[name]}: p50 {p['p50_us']:.0f} µs, p99 {p['p99_us']:.0f} µs")


def tcp_figure(h, nsx, cfg, results, addresses, tunnels):
    order = list(addresses)
    log(f"== TCP, 1 stream, {cfg.tcp_seconds} s, {cfg.tcp_runs} runs")
    samples = {n: [] for n in order}
    for run in range(cfg.tcp_runs):
        for name in order[run % len(order):] + order[:run % len(order)]:
            if name not in samples:
                continue
            s = guarded(results, name, "tcp", tcp_run, h, nsx, addresses[name], cfg.tcp_seconds, tunnels.get(name))
            if s is None:
                del samples[name]
                continue
            samples[name].append(s)
            log(f"{LABEL[name]}: {s['gbit_s']:.3f} Gbit/s"
                + (f", CPU {s['cpu_per_gb']['both']:.2f} s/GB" if "cpu_per_gb" in s else ""))
    for name, runs in samples.items():
        r = results.setdefault(name, {})
        r["tcp"] = {"runs": runs, "median_mbit_s": median([s["gbit_s"] * 1000 for s in runs])}
        if name in tunnels:
            r["cpu_per_gb"] = {end: median([s["cpu_per_gb"][end] for s in runs]) for end in ("client", "hub", "both")}


def udp_figure(h, nsx, cfg, results, addresses, tunnels):
    """The same rising rates for every tunnel, the tunnels taking turns at each rate:
    UDP_START Mbit/s, then 1.5x at each step. A tunnel leaves the ladder after two
    rates in a row over the loss budget (one alone may be a burst from elsewhere on the
    machine). Its figure is the best rate received with loss within the budget."""
    log(f"== UDP at <= {LOSS_LIMIT:g}% loss, {cfg.udp_seconds} s per rate")
    tries = {name: [] for name in tunnels}
    over = {name: 0 for name in tunnels}
    rate = cfg.udp_start
    for step in range(cfg.udp_steps):
        active = [n for n in tries if over[n] < 2]
        if not active:
            break
        for name in active[step % len(active):] + active[:step % len(active)]:
            r = guarded(results, name, "udp", udp_run, h, nsx, addresses[name], rate, cfg.udp_seconds)
            if r is None:
                over[name] = 2
                continue
            tries[name].append(r)
            over[name] = over[name] + 1 if r["loss_percent"] > LOSS_LIMIT else 0
            log(f"{LABEL[name]}: {rate:.0f} Mbit/s offered, {r['received_mbit_s']:.0f} received, "
                f"{r['loss_percent']:.2f}% lost")
        rate *= 1.5
    for name, ts in tries.items():
        good = [t["received_mbit_s"] for t in ts if t["loss_percent"] <= LOSS_LIMIT]
        results.setdefault(name, {})["udp"] = {"best_mbit_s": max(good) if good else None, "tries": ts}
        log(f"{LABEL[name]}: {fmt(max(good) if good else None, 0)} Mbit/s received with <= {LOSS_LIMIT:g}% loss")


ROWS = [
    ("TCP throughput, 1 stream (Mbit/s)", "higher", ["tcp", "median_mbit_s"], 0),
    (f"UDP throughput at ≤ {LOSS_LIMIT:g}% loss (Mbit/s received)", "higher", ["udp", "best_mbit_s"], 0),
    ("Round trip p50 (µs)", "lower", ["ping", "p50_us"], 0),
    ("Round trip p99 (µs)", "lower", ["ping", "p99_us"], 0),
    ("CPU s per GB, both ends", "lower", ["cpu_per_gb", "both"], 2),
    ("CPU s per GB, client end", "lower", ["cpu_per_gb", "client"], 2),
    ("CPU s per GB, hub end", "lower", ["cpu_per_gb", "hub"], 2),
]


def markdown(doc):
    results = doc["results"]
    m = doc["machine"]
    cols = ["ktlstun", "openvpn-tcp", "openvpn-udp", "underlay"]
    lines = [f"# ktlstun network tunnels against OpenVPN — {doc['date']}", "",
             f"Machine: {m['nproc']} CPUs ({m['cpu_model']}), Linux {m['kernel']}.  ",
             "Versions: " + ", ".join(f"{k} {v}" for k, v in m["versions"].items()) + ".  ",
             f"Two network namespaces joined by a veth pair; every tunnel: mTLS ECDSA P-256, TLS 1.3, "
             f"AES-128-GCM, TUN MTU {MTU}, userspace data path (ktlstun `ktls = off`, OpenVPN `disable-dco`). "
             f"TCP: iperf3, 1 stream, {doc['config']['tcp_seconds']} s, median of {doc['config']['tcp_runs']}; "
             f"round trip: {doc['config']['ping_count']} pings 10 ms apart, in {PING_TURNS} turns taken by the tunnels "
             f"in rotation; CPU: both ends' processes over the "
             f"TCP runs. The run took {doc['elapsed_s']:.0f} s; load average when it started: "
             f"{doc['load_average_at_start'][0]:.2f}.", ""]
    head = ["Figure", *[LABEL[c] for c in cols], "ktlstun ÷ OpenVPN TCP", "ktlstun ÷ OpenVPN UDP"]
    lines += ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for title, better, path, digits in ROWS:
        values = {c: dig(results, c, path) for c in cols}
        if all(v is None for v in values.values()):
            continue
        cells = [f"{title} ({better} is better)", *[fmt(values[c], digits) for c in cols]]
        for other in ("openvpn-tcp", "openvpn-udp"):
            r = ratio(values["ktlstun"], values[other])
            cells.append("–" if r is None or values[other] <= 0 else f"{r:.2f}×")
        lines.append("| " + " | ".join(cells) + " |")
    lines.append("")
    for name in PEERS:
        errors = results.get(name, {}).get("errors", {})
        if "start" in errors:
            # The first lines after "... exited (1):" are the reason (a daemon's
            # configuration errors, say); the work directory keeps the whole logs.
            reason = [x.strip() for x in errors["start"].strip().splitlines()[1:] if x.strip()][:3]
            lines.append(f"**{LABEL[name]} could not run**: its tunnel did not come up"
                         + (": " + "; ".join(reason) if reason else "") + ".")
        for figure, e in errors.items():
            if figure != "start":
                lines.append(f"{LABEL[name]}, {figure}: failed: {e.strip().splitlines()[0] if e.strip() else ''}")
    lines.append("")
    return "\n".join(lines)


def parse_args():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--build", required=True)
    ap.add_argument("--results", required=True)
    ap.add_argument("--netns-prefix", required=True)
    ap.add_argument("--quick", action="store_true")
    cfg = ap.parse_args()
    cfg.build = os.path.abspath(cfg.build)
    cfg.results = os.path.abspath(cfg.results)
    if cfg.quick:
        cfg.tcp_seconds, cfg.tcp_runs, cfg.udp_seconds, cfg.udp_steps, cfg.ping_count = 1, 1, 1, 4, 100
    else:
        cfg.tcp_seconds, cfg.tcp_runs, cfg.udp_seconds, cfg.udp_steps, cfg.ping_count = 5, 3, 2, 9, 300
    cfg.udp_start = 50.0
    return cfg


def main():
    cfg = parse_args()
    started = time.monotonic()
    work = tempfile.mkdtemp(prefix="ktlstun-bench-network.")
    h = Harness(cfg.build, work)
    nsx = Namespaces(cfg.netns_prefix)
    interrupt_on_sigterm()
    results = {}
    doc = {"date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
           "machine": machine_info(cfg.build), "load_average_at_start": os.getloadavg(),
           "config": {k: getattr(cfg, k) for k in ("tcp_seconds", "tcp_runs", "udp_seconds", "udp_steps", "udp_start",
                                                   "ping_count", "quick")},
           "results": results}
    status = 1
    try:
        log(f"work dir {work}, namespaces {nsx.client} and {nsx.hub}")
        nsx.create()
        pki = make_pki(work)
        measure(h, nsx, pki, cfg, results)
        doc["elapsed_s"] = time.monotonic() - started
        os.makedirs(cfg.results, exist_ok=True)
        with open(os.path.join(cfg.results, "network.json"), "w") as f:
            json.dump(doc, f, indent=1)
        md = markdown(doc)
        with open(os.path.join(cfg.results, "network.md"), "w") as f:
            f.write(md)
        print(md)
        log(f"results in {cfg.results}/network.md, network.json ({doc['elapsed_s']:.0f} s)")
        status = 0
        if any(r.get("errors") for r in results.values()):
            log(f"logs of what failed kept in {work}")
            work = None
    except (BenchError, subprocess.CalledProcessError) as e:
        log(f"bench failed: {e}")
        log(f"logs kept in {work}")
        work = None
    except KeyboardInterrupt:
        log("interrupted")
    finally:
        h.stop_all()
        nsx.remove()
        if work is not None and status == 0:
            shutil.rmtree(work, ignore_errors=True)
    return status


def machine_info(build):
    return {"nproc": os.cpu_count(), "cpu_model": cpu_model(), "kernel": os.uname().release, "versions": {
        "ktlstun": command_version([os.path.join(build, "ktlstund"), "-V"], r"ktlstun\S*\s+(\S+)"),
        "openvpn": command_version(["openvpn", "--version"], r"OpenVPN (\S+)"),
        "openssl": command_version(["openssl", "version"], r"OpenSSL (\S+)"),
        "iperf3": command_version(["iperf3", "--version"], r"iperf (\S+)")}}


if __name__ == "__main__":
    sys.exit(main())
