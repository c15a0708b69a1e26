"""The page's figures: page ready (cold), words to the patch in use, and a WebSocket flood.

    python benchmarks/bench_web.py [ready] [prompt] [notice] [flood] [--n 10] [--seconds 8] [--rounds 3] [--page]

- ``ready``: a new headless Chromium (empty profile: nothing cached) loads the page from
  a host started with ``--web`` (this process's JACK server); from the navigation's
  start to the page showing the host's state (its socket open, every channel's patch
  and the knobs drawn: ``body[data-ready]``). Debian's chromium and chromium-driver,
  and selenium.
- ``prompt``: an in-process host (the shipped model) on this process's JACK server; a
  new prompt each time (no cache) sent over the page's WebSocket, and for comparison
  over OSC; from sending it to the render process applying the patch (its per-channel
  patch counter), less the model's own time for that very request (the worker's submit
  to its answer, timed around the host's own call).
- ``notice``: a change made elsewhere (OSC ``/patch/load``, as Max sends it) to the
  ``/patch/changed`` notice on the page's socket.
- ``flood``: its own JACK server, as ``bench_xruns.py`` runs (a silent client beside
  the host as the control): per round a ``held`` phase (a 32-voice chord) and a
  ``webflood`` phase (the chord, and 5,000 hostile and valid messages a second over one
  WebSocket for --seconds: broken JSON, wrong types, NaN, huge strings, binary frames,
  unknown addresses, notes and /param on channel 16); JACK's late cycles and "ours"
  (only the host's clients late) as bench_xruns counts them, the host's ring underruns,
  its memory (VmRSS of the host process, before and the most during), and how a second
  socket (the page) is answered meanwhile: /status round trips every 250 ms. With
  ``--page``, a headless Chromium also shows the page from the host in both phases (its
  CPU beside the host's, so the xrun counts are not those of a run without it), and the
  page's own /status round trips (its poll, four a second: from its send to the reply
  reaching the page's script) are printed for each phase, with how many came back.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import statistics
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

SHIPPED = ROOT / "model" / "checkpoints" / "default"


def summary(xs: list[float], unit: str = "ms") -> str:
    if not xs:
        return "none"
    return (f"median {statistics.median(xs):.1f} {unit}, min {min(xs):.1f}, max {max(xs):.1f} "
            f"(n={len(xs)})")


# -- page ready, cold ------------------------------------------------------------------


def bench_ready(n: int) -> None:
    import tempfile

    from server.host import Host, HostConfig
    from tests.server.browser import open_browser

    host = Host(HostConfig(osc_port=0, use_model=False, bank=tempfile.mkdtemp(), web_port=0)).start()
    try:
        ready, load = [], []
        for _ in range(n):
            d = open_browser()
            try:
                d.get(host.web.url)  # returns after the load event
                t = d.execute_script(
                    "return new Promise(r => { const f = () => document.body.dataset.ready ? "
                    "r([window.promptsynth.readyMs, performance.getEntriesByType('navigation')[0]"
                    ".loadEventEnd]) : setTimeout(f, 5); f(); })")
                ready.append(t[0])
                load.append(t[1])
            finally:
                d.quit()
        print(f"page ready, cold (new Chromium, empty profile; navigation start -> the host's "
              f"state shown): {summary(ready)}")
        print(f"  of which the page's files loaded (load event): {summary(load)}")
    finally:
        host.close()


# -- words to the patch in use ---------------------------------------------------------


def bench_prompt(n: int) -> None:
    import socket
    import tempfile

    from pythonosc import osc_message_builder
    from websockets.sync.client import connect

    from server.host import Host, HostConfig

    host = Host(HostConfig(osc_port=0, model=str(SHIPPED), bank=tempfile.mkdtemp(), web_port=0)).start()
    model_s: dict[str, float] = {}
    submit = host.worker.submit

    def timed_submit(request, callback):  # the model's own time for each request
        t0 = time.monotonic()

        def answered(*a):
            model_s[getattr(request, "prompt", "")] = time.monotonic() - t0
            callback(*a)

        submit(request, answered)

    host.worker.submit = timed_submit
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        ws = connect(host.web.url.replace("http://", "ws://") + "ws")
        threading.Thread(target=lambda: [None for _ in ws], daemon=True).start()  # replies read
        words = ["a warm nylon guitar", "a soft flute", "a bowed cello", "a glassy bell", "a dark bass"]
        results: dict[str, list[tuple[float, float]]] = {"web": [], "osc": []}
        for i in range(2 * n + 2):
            way = "web" if i % 2 == 0 else "osc"
            text = f"{words[i % len(words)]} {i} {os.getpid()} {time.time():.6f}"
            k = host.engine.patch_serial(1)
            t0 = time.monotonic()
            if way == "web":
                ws.send(json.dumps({"address": "/prompt", "args": [text, 2, i]}))
            else:
                b = osc_message_builder.OscMessageBuilder(address="/prompt")
                for a in (text, 2, i):
                    b.add_arg(a)
                sock.sendto(b.build().dgram, ("127.0.0.1", host.osc.port))
            deadline = t0 + 10
            while host.engine.patch_serial(1) == k and time.monotonic() < deadline:
                time.sleep(0.0002)
            total = time.monotonic() - t0
            time.sleep(0.05)
            if i >= 2:  # the first two warm up
                results[way].append((total * 1000, model_s.get(text, float("nan")) * 1000))
        for way, rows in results.items():
            print(f"/prompt over {'the WebSocket' if way == 'web' else 'OSC (UDP)'} -> patch in use: "
                  f"{summary([t for t, _ in rows])}; the model's own time {summary([m for _, m in rows])}; "
                  f"beyond the model: {summary([t - m for t, m in rows])}")
        ws.close()
    finally:
        sock.close()
        host.close()


# -- a change made elsewhere, shown on the page ----------------------------------------


def bench_notice(n: int) -> None:
    """OSC /patch/load (as Max sends it) -> the page's socket has /patch/changed; OSC
    /send/reverb -> the page's socket has /web/effects (the watched state, 4 ms reads)."""
    import socket
    import tempfile

    from pythonosc import osc_message_builder
    from websockets.sync.client import connect

    from server.host import Host, HostConfig

    host = Host(HostConfig(osc_port=0, use_model=False, bank=tempfile.mkdtemp(), web_port=0)).start()
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        with connect(host.web.url.replace("http://", "ws://") + "ws") as ws:
            while json.loads(ws.recv(timeout=10))["address"] != "/web/ready":
                pass
            ms, fx_ms = [], []
            for i in range(n + 2):
                b = osc_message_builder.OscMessageBuilder(address="/patch/load")
                for a in (("cello", "flute")[i % 2], 3):
                    b.add_arg(a)
                t0 = time.monotonic()
                sock.sendto(b.build().dgram, ("127.0.0.1", host.osc.port))
                while (m := json.loads(ws.recv(timeout=10)))["address"] != "/patch/changed" or m["args"][0] != 3:
                    pass
                if i >= 2:
                    ms.append((time.monotonic() - t0) * 1000)
                time.sleep(0.02)
            at = 12 + 2  # /web/effects: 12 settings, then the reverb sends; channel 3
            for i in range(n + 2):
                level = 0.25 + 0.5 * (i % 2)
                b = osc_message_builder.OscMessageBuilder(address="/send/reverb")
                b.add_arg(level, "f")
                b.add_arg(3)
                t0 = time.monotonic()
                sock.sendto(b.build().dgram, ("127.0.0.1", host.osc.port))
                while (m := json.loads(ws.recv(timeout=10)))["address"] != "/web/effects" or m["args"][at] != level:
                    pass
                if i >= 2:
                    fx_ms.append((time.monotonic() - t0) * 1000)
                time.sleep(0.021)  # not a multiple of the watch's period
        block_ms = 1000 * host.output.blocksize / host.engine.sample_rate
        print(f"OSC /patch/load -> /patch/changed on the page's socket: {summary(ms)} "
              f"(a block is {block_ms:.2f} ms)")
        print(f"OSC /send/reverb -> /web/effects on the page's socket: {summary(fx_ms)}")
    finally:
        sock.close()
        host.close()


# -- the flood ---------------------------------------------------------------------------


def flood_frames(n: int, seed: int = 11) -> list[str | bytes]:
    """Hostile and valid frames (seeded): what a broken or malicious page could send."""
    rng = random.Random(seed)
    good = json.dumps({"address": "/note", "args": [60, 100, 16]})
    makers = [
        lambda: good[: rng.randrange(1, len(good))],  # cut short
        lambda: "".join(chr(rng.randrange(1, 0x3000)) for _ in range(rng.randrange(1, 64))),
        lambda: bytes(rng.randrange(256) for _ in range(rng.randrange(1, 64))),  # binary
        lambda: json.dumps({"address": "/note", "args": [rng.choice(["x", -1, 1e300, 128, 60.5]), 100, 16]}),
        lambda: '{"address": "/param/mod_index", "args": [NaN, 16]}',
        lambda: json.dumps({"address": "/prompt", "args": ["x" * rng.choice([1001, 20000, 60000])]}),
        lambda: json.dumps({"address": "/" + "a" * rng.randrange(1, 2000)}),
        lambda: json.dumps({"address": "/note", "args": [[60], {"a": 1}, True]}),
        lambda: "[" * 20000 + "]" * 20000,
        lambda: json.dumps({"address": "/spectrum", "args": [rng.uniform(-90, 5) for _ in range(33)]}),
        lambda: json.dumps({"address": "/fail", "args": ["/x", "y"]}),
        lambda: json.dumps({"address": "/notify", "args": [9]}),
        lambda: json.dumps({"address": "/status"}),
        lambda: json.dumps({"address": "/param/mod_index", "args": [rng.uniform(0, 8), 16]}),
        lambda: json.dumps({"address": "/note", "args": [rng.randrange(40, 90), 90, 16]}),
        lambda: json.dumps({"address": "/cc", "args": [123, 0, 16]}),  # its notes end
    ]
    return [rng.choice(makers)() for _ in range(n)]


def rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def web_flood(url: str, seconds: float, per_s: int, frames: list) -> int:
    """``per_s`` frames a second over one socket for ``seconds``; frames sent."""
    from websockets.sync.client import connect

    sent = 0
    with connect(url, max_size=None) as ws:
        threading.Thread(target=lambda: [None for _ in ws], daemon=True).start()  # replies read
        start = time.monotonic()
        while (now := time.monotonic()) < start + seconds:
            # Paced on the whole: as many as (elapsed x per_s), a short sleep when ahead.
            while sent < (now - start) * per_s:
                ws.send(frames[sent % len(frames)])
                sent += 1
            time.sleep(0.002)
    return sent


def page_watch(url: str, pid: int, done: threading.Event, rtts: list, peak: list) -> None:
    """The page's own socket: /status 4 times a second, each round trip (ms) kept, and the
    host's memory beside it."""
    from websockets.sync.client import connect

    with connect(url) as ws:
        while json.loads(ws.recv(timeout=10))["address"] != "/web/ready":
            pass
        while not done.wait(0.25):
            t0 = time.monotonic()
            ws.send('{"address": "/status"}')
            while json.loads(ws.recv(timeout=10))["address"] != "/status.reply":
                pass
            rtts.append((time.monotonic() - t0) * 1000)
            peak.append(rss_mb(pid))


_PAGE_TIMING = """
const s = window.promptsynth;
window.__rtts = [];
s.ws.addEventListener("message", (e) => {
  if (e.data.startsWith('{"address":"/status.reply"') && s.statusAsked !== undefined)
    window.__rtts.push(performance.now() - s.statusAsked);
});
"""


def page_open(url: str):
    """A headless Chromium showing the page from ``url`` (http), ready, its round trips
    timed (:func:`page_rtts`)."""
    from tests.server.browser import open_browser

    d = open_browser()
    d.get(url)
    deadline = time.monotonic() + 20
    while not d.execute_script("return document.body.dataset.ready"):
        if time.monotonic() > deadline:
            d.quit()
            raise RuntimeError("the page did not get ready in 20 s")
        time.sleep(0.05)
    d.execute_script(_PAGE_TIMING)
    return d


def page_rtts(d) -> list[float]:
    """The page's /status round trips (ms) since the last call; none if its socket closed
    (its script counts on the socket it opened with)."""
    return d.execute_script("const r = window.__rtts; window.__rtts = []; "
                            "return window.promptsynth.ws.readyState === 1 ? r : null") or []


def bench_flood(seconds: float, rounds: int, voices: int, page: bool = False) -> None:
    import bench_xruns as bx

    env = dict(os.environ, JACK_DEFAULT_SERVER=bx.SERVER, JACK_NO_START_SERVER="1")
    os.environ.update(JACK_DEFAULT_SERVER=bx.SERVER, JACK_NO_START_SERVER="1")
    jack = bx.Jack()
    frames = flood_frames(4000)
    try:
        for rnd in range(1, rounds + 1):
            beside = bx.run_client(bx.SILENT_BESIDE, env)
            host = bx.Host(voices, "low", False, env, extra=["--web", "0"])
            http_url = re.search(r"\| web (http://\S+)", host.ready_line).group(1)
            url = http_url.replace("http://", "ws://") + "ws"
            browser = None
            try:
                if page:
                    browser = page_open(http_url)
                time.sleep(1.0)
                for scenario in ("held", "webflood"):
                    host.chord(voices)
                    time.sleep(0.3)
                    s0 = host.status()
                    mem0 = rss_mb(host.proc.pid)
                    jack.phase = key = f"{scenario}#{rnd}"
                    peak, rtts, sent = [mem0], [], [0]
                    done = threading.Event()
                    if browser is not None:
                        page_rtts(browser)  # from this phase's start

                    watcher = threading.Thread(target=page_watch, args=(url, host.proc.pid, done, rtts, peak),
                                               daemon=True)
                    watcher.start()
                    if scenario == "webflood":
                        sent[0] = web_flood(url, seconds, 5000, frames)
                    else:
                        time.sleep(seconds)
                    done.set()
                    watcher.join(timeout=15)
                    time.sleep(0.05)
                    jack.flush()
                    jack.phase = None
                    c = jack.counts.get(key, {})
                    s1 = host.status()
                    print(f"{scenario:<9} round {rnd}: late cycles {c.get('events', 0)}, ours {c.get('ours', 0)} "
                          f"(client xruns {c.get('client', 0)}: host {c.get('host', 0)}, control "
                          f"{c.get('control', 0)}; driver {c.get('driver', 0)}); ring underruns "
                          f"{s1[13] - s0[13]}; sent {sent[0]} ({sent[0] / seconds:.0f}/s); host memory "
                          f"{mem0:.1f} MB -> most {max(peak):.1f} MB (+{max(peak) - mem0:.1f}), after "
                          f"{rss_mb(host.proc.pid):.1f}; the page's /status round trip {summary(rtts)}; "
                          f"host {'alive' if host.proc.poll() is None else 'DEAD'}", flush=True)
                    if browser is not None:
                        got = page_rtts(browser)
                        print(f"{'':<9} Chromium's page: its /status round trip {summary(got)} "
                              "(it asks four times a second)", flush=True)
            finally:
                if browser is not None:
                    browser.quit()
                    import shutil

                    shutil.rmtree(browser.profile_dir, ignore_errors=True)
                host.close()
                beside.stdin.close()
                beside.wait(timeout=10)
    finally:
        jack.close()
    print("client xruns by client:", jack.who or "none")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("what", nargs="*", default=["ready", "prompt", "notice", "flood"],
                    choices=["ready", "prompt", "notice", "flood"])
    ap.add_argument("--n", type=int, default=10, help="page loads; prompts each way")
    ap.add_argument("--seconds", type=float, default=8.0, help="seconds of each flood phase")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--voices", type=int, default=32)
    ap.add_argument("--page", action="store_true", help="flood: a headless Chromium shows the page too")
    args = ap.parse_args()
    os.environ.setdefault("JACK_NO_START_SERVER", "1")
    if "ready" in args.what:
        bench_ready(args.n)
    if "prompt" in args.what:
        bench_prompt(args.n)
    if "notice" in args.what:
        bench_notice(args.n)
    if "flood" in args.what:
        bench_flood(args.seconds, args.rounds, args.voices, args.page)
    return 0


if __name__ == "__main__":
    sys.exit(main())
