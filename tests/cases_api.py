"""The control API (--api-sock) and pause/resume.

curl --unix-socket is the client where one exists outside hvmm (tooling
written for Firecracker talks to hvmm the same way), `hvmm ctl` the one
people use. A Linux guest paused for 3 s with its disk, its network and a
clock-driven ticker in use must not run while paused and must carry on
after, all of it intact.
"""
import hashlib
import json
import os
import re
import socket
import subprocess
import threading
import time

from harness import case, expect, free_port
from linuxvm import LinuxVM
from cases_linux_shell import VM_TIMEOUT, boot_to_prompt, end_with, hvmm_argv, images

GUEST_PORT = 5001
PAUSE_S = 3.0


def curl(sock, path, method="GET", body=None, headers=False):
    """(status, body) of one request through curl; headers: the head too."""
    argv = ["curl", "-sS", "--max-time", "20", "--unix-socket", sock, "-X", method,
            "-w", "\n%{http_code}", f"http://localhost{path}"]
    if headers:
        argv.insert(1, "-i")
    if body is not None:
        argv += ["-H", "Content-Type: application/json", "--data-binary", body]
    p = subprocess.run(argv, capture_output=True, text=True, timeout=30)
    expect(p.returncode == 0, f"curl {method} {path}: status {p.returncode}: {p.stderr.strip()}")
    text, _, code = p.stdout.rpartition("\n")
    return int(code), text


def ctl(ctx, sock, *args):
    p = subprocess.run([ctx.hvmm_bin, "ctl", sock, *args], capture_output=True, text=True, timeout=30)
    return p.returncode, p.stdout, p.stderr


def wait_for(path, secs=30):
    end = time.time() + secs
    while not os.path.exists(path):
        expect(time.time() < end, f"{path} never appeared")
        time.sleep(0.05)


@case("api/usage")
def t_usage(ctx):
    """A path in the way, a path too long for a unix socket, a bad --id:
    one line and status 2 before the guest runs; `hvmm ctl` without a VM
    behind the socket: one line, status 6; its usage errors: status 2."""
    spin = ctx.guest("spin.elf")
    taken = os.path.join(ctx.tmp, "taken.sock")
    open(taken, "w").close()
    for args, want in ((["--api-sock", taken], "exists"),
                       (["--api-sock", "/tmp/" + "x" * 120], "longer than 107 bytes"),
                       (["--id", ""], "--id: '' is empty")):
        p = subprocess.run([ctx.hvmm_bin, "run", "--timeout", "5", *args, spin], capture_output=True,
                           text=True, timeout=30)
        lines = p.stderr.strip().splitlines()
        expect(p.returncode == 2 and len(lines) == 1 and want in lines[0],
               f"{args}: status {p.returncode}, stderr {p.stderr!r}; want status 2 and one line with {want!r}")
    expect(os.path.isfile(taken), "the file in the way was touched")
    st, out, err = ctl(ctx, os.path.join(ctx.tmp, "nobody.sock"), "info")
    expect(st == 6 and len(err.strip().splitlines()) == 1 and "No such file" in err,
           f"ctl without a VM: status {st}, stderr {err!r}")
    for args in ((), ("x.sock",), ("x.sock", "info", "extra"), ("x.sock", "bogus"), ("x.sock", "GET", "no-slash")):
        p = subprocess.run([ctx.hvmm_bin, "ctl", *args], capture_output=True, text=True, timeout=30)
        expect(p.returncode == 2 and len(p.stderr.strip().splitlines()) == 1,
               f"ctl {args}: status {p.returncode}, stderr {p.stderr!r}")


@case("api/requests")
def t_requests(ctx):
    """Every route and every error status through curl and `hvmm ctl`
    against a running guest (2 vCPUs); a paused VM reports each vCPU's
    registers in /hvmm/stats; the socket file is gone once hvmm ends."""
    spin = ctx.guest("spin.elf")
    sock = os.path.join(ctx.tmp, "api.sock")
    metrics = os.path.join(ctx.tmp, "metrics.jsonl")
    p = subprocess.Popen([ctx.hvmm_bin, "run", "--cpus", "2", "--timeout", "60", "--id", "vm-7",
                          "--api-sock", sock, "--metrics", metrics, "--stats", spin], stdin=subprocess.DEVNULL,
                         stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        wait_for(sock)
        st, body = curl(sock, "/")
        info = json.loads(body)
        expect(st == 200 and info == {"app_name": "hvmm", "id": "vm-7", "state": "Running",
                                      "vmm_version": info.get("vmm_version")} and info["vmm_version"],
               f"GET /: {st} {body}")
        st, body = curl(sock, "/machine-config")
        expect(st == 200 and json.loads(body) == {"vcpu_count": 2, "mem_size_mib": 128, "smt": False,
                                                   "track_dirty_pages": False}, f"GET /machine-config: {st} {body}")
        st, body = curl(sock, "/hvmm/stats")
        stats = json.loads(body)
        expect(st == 200 and len(stats["vcpus"]) == 2 and "state" not in stats["vcpus"][0]
               and stats["lifecycle"]["state"] == "Running", f"GET /hvmm/stats running: {st} {body[:300]}")
        st, body = curl(sock, "/hvmm/irt")
        expect(st == 200 and isinstance(json.loads(body), list), f"GET /hvmm/irt: {st} {body[:300]}")
        # pause through curl, resume through hvmm ctl
        st, body = curl(sock, "/vm", "PATCH", '{"state": "Paused"}')
        expect(st == 204 and body == "", f"PATCH /vm Paused: {st} {body!r}")
        st, body = curl(sock, "/")
        expect(json.loads(body)["state"] == "Paused", f"GET / after the pause: {body}")
        st, body = curl(sock, "/hvmm/stats")
        stats = json.loads(body)
        rips = [v.get("state", {}).get("guest_state", {}).get("rip") for v in stats["vcpus"]]
        expect(all(isinstance(r, int) for r in rips) and stats["lifecycle"]["pauses"] == 1
               and stats["lifecycle"]["park_ns_last"] > 0, f"GET /hvmm/stats paused: {body[:600]}")
        st, body = curl(sock, "/vm", "PATCH", '{"state": "Paused"}')
        expect(st == 204, f"a second pause is a no-op, not an error: {st} {body}")
        rc, out, err = ctl(ctx, sock, "resume")
        expect(rc == 0 and out == "" and err == "", f"hvmm ctl resume: {rc} {out!r} {err!r}")
        rc, out, err = ctl(ctx, sock, "info")
        expect(rc == 0 and json.loads(out)["state"] == "Running", f"hvmm ctl info: {rc} {out!r} {err!r}")
        for cmd in ("config", "stats", "irt"):
            rc, out, err = ctl(ctx, sock, cmd)
            expect(rc == 0 and json.loads(out) is not None, f"hvmm ctl {cmd}: {rc} {err!r}")
        # errors: status, and a fault_message naming the problem
        for method, path, body, want, text in (
                ("PATCH", "/vm", '{"state": "Stopped"}', 400, "'state' must be"),
                ("PATCH", "/vm", '{"stat": "Paused"}', 400, "unknown field 'stat'"),
                ("PATCH", "/vm", '{"state": ', 400, "not valid JSON"),
                ("PATCH", "/vm", "", 400, "needs a JSON body"),
                ("PUT", "/actions", '{"action_type": "InstanceStart"}', 400, "already runs"),
                ("PUT", "/machine-config", '{"vcpu_count": 4}', 400, "cannot change"),
                ("GET", "/nope", None, 404, "no such path"),
                ("DELETE", "/vm", None, 405, "takes PATCH"),
                ("PUT", "/snapshot/create", '{}', 400, "missing field 'snapshot_path'"),
                ("PUT", "/snapshot/create", '{"snapshot_path": "/s", "mem_file_path": "/m"}', 400,
                 "pause it first"),
                ("PUT", "/mmds", '{}', 501, "not served by hvmm"),
                ("PATCH", "/vm", '{"state": "' + "x" * 70000 + '"}', 413, "too large")):
            st, got = curl(sock, path, method, body)
            fault = json.loads(got).get("fault_message", "") if got.startswith("{") else ""
            expect(st == want and text in fault, f"{method} {path}: {st} {got[:200]!r}, want {want} with {text!r}")
        st, head = curl(sock, "/vm", "GET", headers=True)
        expect(st == 405 and re.search(r"^Allow: PATCH\r?$", head, re.M), f"405 without Allow: {head!r}")
        rc, out, err = ctl(ctx, sock, "PATCH", "/vm", "{}")
        expect(rc == 1 and err.strip() == "hvmm ctl: 400 Bad Request: missing field 'state'",
               f"hvmm ctl's refused request: {rc} {err!r}")
        # FlushMetrics: one line of statistics in the --metrics file now
        st, body = curl(sock, "/actions", "PUT", '{"action_type": "FlushMetrics"}')
        expect(st == 204, f"FlushMetrics: {st} {body}")
        with open(metrics) as f:
            lines = [json.loads(x) for x in f.read().splitlines()]
        expect(len(lines) == 1 and lines[0]["reason"] == "flush" and lines[0]["utc_timestamp_ms"] > 0
               and len(lines[0]["hvmm"]["vcpus"]) == 2, f"the metrics file after FlushMetrics: {lines!r:.400}")
        # The guest still runs after all of it (the errors changed nothing).
        expect(json.loads(curl(sock, "/")[1])["state"] == "Running", "not running after the errors")
        p.terminate()
        _, err = p.communicate(timeout=30)
        err = err.decode(errors="replace")
        expect(p.returncode == 128 + 15, f"hvmm ended with {p.returncode}: {err[-800:]}")
        expect(re.search(r"paused 1 time: everything parked in [\d.]+ us", err),
               f"--stats has no pause line: {err[-800:]}")
        with open(metrics) as f:
            reasons = [json.loads(x)["reason"] for x in f.read().splitlines()]
        expect(reasons == ["flush", "stop"], f"metrics lines' reasons {reasons}, want a flush and the stop")
        expect(not os.path.exists(sock), "the socket file is left behind")
    finally:
        if p.poll() is None:
            p.kill()
            p.communicate()


def pause_scenario(ctx, who, vm, pause, resume, hport):
    """The checks of a pause; returns the summary line."""
    t = boot_to_prompt(vm, who)
    # the disk: 1 MiB of random data written through to the device
    vm.run("dd if=/dev/urandom of=/tmp/p bs=65536 count=16 2>/dev/null && "
           "dd if=/tmp/p of=/dev/vda bs=65536 oflag=direct 2>/dev/null", timeout=90)
    want = vm.run("sha256sum /tmp/p | cut -d' ' -f1").strip()
    # the network: a TCP connection through the port forward, open across the pause
    vm.run("udhcpc -i eth0 -n -q -t 10 >/dev/null 2>&1", timeout=90)
    vm.run(f"{{ (nc -l -p {GUEST_PORT} </dev/null >/tmp/rx; echo done >/tmp/rx.end) >/dev/null 2>&1 & }}")
    # listening (0A) before the host connects: the forward accepts on the
    # host side at once and would reset a connection the guest refused
    listening = f"grep -qE ':{GUEST_PORT:04X} [0-9A-F]+:0000 0A' /proc/net/tcp /proc/net/tcp6"
    vm.run(f"i=0; until {listening} || [ $i -ge 100 ]; do sleep 0.1; i=$((i+1)); done; {listening}")
    half = os.urandom(96 << 10)
    sent = {"err": None}
    conn = None
    end = time.time() + 60  # every wait here is bounded: a hung guest fails the case, not the run
    while conn is None and time.time() < end:
        try:
            conn = socket.create_connection(("127.0.0.1", hport), timeout=20)
            conn.sendall(half)
        except OSError:
            if conn:
                conn.close()
            conn = None
            time.sleep(0.2)
    expect(conn is not None, f"{who}: the guest's listener never answered")
    # the clock: a ticker appends the guest's uptime 5 times a second
    vm.run("{ (while :; do cut -d' ' -f1 /proc/uptime >> /tmp/ticks; sleep 0.2; done) </dev/null >/dev/null 2>&1 & }")
    time.sleep(1.5)
    before = int(vm.run("wc -l < /tmp/ticks").strip())
    t0 = time.time()
    pause()
    paused_at = time.time()

    def second_half():  # sent while the guest is paused: it must wait for it
        try:
            conn.sendall(half)
            conn.shutdown(socket.SHUT_WR)
        except OSError as e:
            sent["err"] = e
    th = threading.Thread(target=second_half, daemon=True)
    th.start()
    vm.send(f"echo PAUSED-$((40+{int(PAUSE_S)}))\n")
    try:
        vm.expect(rf"PAUSED-{40 + int(PAUSE_S)}", PAUSE_S, final=False)
        ran = True
    except AssertionError:
        ran = False
    expect(not ran, f"{who}: the guest answered the console while paused")
    resume()
    paused_for = time.time() - paused_at
    vm.expect(rf"PAUSED-{40 + int(PAUSE_S)}", 30, what=f"{who}: the console after the resume")
    th.join(60)
    expect(sent["err"] is None and not th.is_alive(), f"{who}: sending during the pause: {sent['err']}")
    vm.run("i=0; while [ ! -e /tmp/rx.end ] && [ $i -lt 300 ]; do sleep 0.1; i=$((i+1)); done", timeout=60)
    conn.close()
    got = vm.run("wc -c < /tmp/rx; sha256sum /tmp/rx | cut -d' ' -f1").split()
    whole = hashlib.sha256(half + half).hexdigest()
    expect(got == [str(len(half) * 2), whole], f"{who}: the guest received {got}, want "
           f"{len(half) * 2} bytes sha256 {whole}")
    back = vm.run("dd if=/dev/vda bs=65536 count=16 iflag=direct 2>/dev/null | sha256sum | cut -d' ' -f1").strip()
    expect(back == want, f"{who}: the disk reads back {back}, wrote {want}")
    vm.run("dd if=/dev/zero of=/dev/vda bs=65536 count=4 oflag=direct 2>/dev/null")
    ticks = [float(x) for x in vm.run("cat /tmp/ticks").split() if re.match(r"^[\d.]+$", x)]
    gaps = [b - a for a, b in zip(ticks, ticks[1:])]
    biggest = max(gaps) if gaps else 0
    # The ticker went on after the resume, and by the guest's clock one gap
    # holds the whole pause: hvmm leaves the clock running, as Firecracker
    # does (QEMU stops kvmclock while stopped, and its guest sees no gap).
    shape = [round(g, 2) for g in gaps]
    expect(len(ticks) >= before + 3, f"{who}: the ticker did not go on after the resume: {before} ticks "
           f"before the pause, {len(ticks)} in all (gaps {shape})")
    expect(biggest >= PAUSE_S * 0.8,
           f"{who}: the ticker's gaps {shape}: want one of ~{paused_for:.1f} s (the clock runs on)")
    clock = f"the guest's clock counted the pause ({biggest:.1f} s between two ticks)"
    end_with(vm, who, "poweroff")
    return (f"{who}: prompt at {t:.1f}s; paused {paused_for:.1f} s (the pause request took "
            f"{(paused_at - t0) * 1000:.0f} ms), no console answer meanwhile; {clock}; 192 KiB over "
            f"TCP across the pause and 1 MiB on disk intact")


@case("api/pause-resume-linux")
def t_pause_linux(ctx):
    """Debian's kernel with a disk, virtio-net and 2 vCPUs, paused for 3 s
    through the API and resumed: nothing runs meanwhile (no console answer,
    no tick of a clock-driven loop), and afterwards the console answers, a
    TCP connection through the port forward opened before the pause gets
    all its bytes including those sent during it, and the disk holds what
    was written.

    The same scenario ran on QEMU through QMP stop/cont while this case was
    written (QEMU's guest clock stands still while stopped: no gap); it is
    not part of it, because in 3 of 12 runs here QEMU's guest echoed the
    first command typed after its prompt and never ran it, on both tries,
    with microvm or q35, 1 or 2 vCPUs — the symptom the nested host's
    TSC-deadline timer later showed (harness.nested_qemu_cpu)."""
    images(ctx)
    disk = os.path.join(ctx.tmp, "pause.img")
    with open(disk, "wb") as f:
        f.truncate(8 << 20)

    hport = free_port()
    sock = os.path.join(ctx.tmp, "pause.sock")
    argv = hvmm_argv(ctx, cpus=2, extra=(
        "--api-sock", sock, "--disk", disk,
        "--network", f"user,hostfwd=tcp:127.0.0.1:{hport}-:{GUEST_PORT}"))
    with LinuxVM(argv, VM_TIMEOUT) as vm:
        def pause():
            rc, out, err = ctl(ctx, sock, "pause")
            expect(rc == 0, f"hvmm ctl pause: {rc} {err!r}")

        def resume():
            rc, out, err = ctl(ctx, sock, "resume")
            expect(rc == 0, f"hvmm ctl resume: {rc} {err!r}")
        line = pause_scenario(ctx, "hvmm", vm, pause, resume, hport)
    m = re.search(r"paused 1 time: everything parked in ([\d.]+) us", vm.err.decode(errors="replace"))
    expect(m, "hvmm's --stats has no pause line" + vm.tail())
    print(f"      {line}; vCPUs and device loop parked in {float(m.group(1)):.0f} us", flush=True)



@case("api/inject")
def t_inject(ctx):
    """PUT /hvmm/inject into hvmm's test kernel waiting for events
    (test=inject): an interrupt through curl, an NMI and a #GP with its
    error code through `hvmm ctl inject`; the guest's handlers see each
    with its vector and error code, and /hvmm/stats counts them. Bad events
    are refused before anything reaches the guest."""
    kernel = ctx.path("guest", "hvmm-guest.elf")
    sock = os.path.join(ctx.tmp, "inject.sock")
    sj = os.path.join(ctx.tmp, "inject.json")
    p = subprocess.Popen([ctx.hvmm_bin, "run", "--timeout", "60", "--api-sock", sock, "--stats-json", sj,
                          "--cmdline", "test=inject iters=3", kernel], stdin=subprocess.DEVNULL,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    lines = []

    def read_out():
        for line in p.stdout:
            lines.append(line.decode(errors="replace"))
    reader = threading.Thread(target=read_out, daemon=True)
    reader.start()
    try:
        wait_for(sock)
        # the guest takes events once it says so (before, no handler is ready)
        end = time.time() + 60
        while not any(l.startswith("# inject: waiting") for l in lines):
            expect(time.time() < end and p.poll() is None, f"the guest never waited for events: {lines[-5:]}")
            time.sleep(0.05)
        for body, text in (('{"kind": "nmi", "vector": 2}', "want {"),
                           ('{"kind": "irq", "vector": 3}', "irq:3"),
                           ('{"kind": "exception", "vector": 13}', "error code"),
                           ('{"kind": "exception", "vector": 6, "error_code": 1}', "error code")):
            st, got = curl(sock, "/hvmm/inject", "PUT", body)
            expect(st == 400 and text in json.loads(got)["fault_message"], f"{body}: {st} {got}")
        st, got = curl(sock, "/hvmm/inject", "PUT", '{"kind": "irq", "vector": 94}')
        expect(st == 204, f"irq: {st} {got}")
        time.sleep(0.3)
        for spec in ("nmi", "exception:13:0x1234"):
            rc, out, err = ctl(ctx, sock, "inject", spec)
            expect(rc == 0, f"hvmm ctl inject {spec}: {rc} {err!r}")
            time.sleep(0.3)
        rc, out, err = ctl(ctx, sock, "inject", "irq")
        expect(rc == 2, f"hvmm ctl inject irq (no vector): {rc} {err!r}")
        p.wait(timeout=60)
        reader.join(10)
        err = p.stderr.read()
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    out = "".join(lines)
    seen = re.findall(r"^# injected vector=(\d+) error=0x([0-9a-f]+)", out, re.M)
    expect(p.returncode == 1 and ("94", "0") in seen and ("2", "0") in seen and ("13", "1234") in seen,
           f"status {p.returncode}, the guest saw {seen}:\n{out[-1500:]}\n{err.decode(errors='replace')[-800:]}")
    with open(sj) as f:
        counts = json.load(f)["api_injections"]
    expect(counts == {"irq": 1, "nmi": 1, "exception": 1}, f"api_injections {counts}")
    print(f"      the guest's handlers saw {', '.join(f'vector {v} (error 0x{e})' for v, e in seen)}")
