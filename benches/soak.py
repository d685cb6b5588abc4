#!/usr/bin/env python3
"""The driving and measuring side of benches/soak.sh.

  soak.py run DIR DAYLOG LOG SPEED START PID PORT
      Appends the lines of DAYLOG (a `maillog-loggen --header iso` log whose first line is
      stamped START, epoch seconds) to LOG as their event time comes, SPEED times faster than
      real time: at wall second e of the run, every line stamped up to START + SPEED * e — but
      never past the wall clock — has been written (every 10 ms). Mixed in (each written line
      is recorded in DIR/outliers.tsv): every OUTLIER_EVERY (20) wall seconds, a record line
      stamped in 2099 and one in 1999 (ISO), one with a year-less BSD stamp of the current
      event time and one with a year-less BSD stamp of a random day of the year; every
      BURST_EVERY (120) wall seconds, BURST (300) record lines each in a different 5-minute
      window of the 30 days before the current event time. The record lines are copied
      from DAYLOG (so they are records, counted by `maillog parse` like any other).
      Meanwhile: the VmRSS and VmHWM of PID every second (DIR/rss.tsv); its /metrics every
      10 s (DIR/metrics.jsonl); every TOP_EVERY (30) s, /top for every dimension and window
      (DIR/top.tsv). Ends when DAYLOG is written, after TAIL (30) more seconds of sampling.
  soak.py summarize DIR
      Prints Markdown: RSS over the run (per tenth), the metrics over the run, /top's answers,
      the outliers written.
"""

import calendar
import json
import os
import random
import statistics
import sys
import threading
import time
import urllib.request

MONTHS = "Jan Feb Mar Apr May Jun Jul Aug Sep Oct Nov Dec".split()
DIMS = ["dest", "src", "mailserver", "relay", "dest_domain", "src_domain"]
WINDOWS = ["5m", "1h", "24h"]
WATCHED = [
    "maillog_windows_open",
    "maillog_live_top_keys",
    "maillog_spool_bytes",
    "maillog_spool_files",
    "maillog_seconds_behind",
    "maillog_windows_sealed_total",
    "maillog_late_parts_total",
    "maillog_windows_sealed_by_bound_total",
    "maillog_records_ahead_of_clock_total",
    "maillog_uploads_total",
    "maillog_upload_failures_total",
]


def stamp_of(line):
    """Epoch seconds of an ISO line `2026-12-02T08:19:20+00:00 host …` (UTC)."""
    s = line[:19]
    return calendar.timegm((int(s[0:4]), int(s[5:7]), int(s[8:10]), int(s[11:13]), int(s[14:16]), int(s[17:19])))


def iso(t):
    return time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime(t))


def bsd(t):
    g = time.gmtime(t)
    return "%s %2d %02d:%02d:%02d" % (MONTHS[g.tm_mon - 1], g.tm_mday, g.tm_hour, g.tm_min, g.tm_sec)


def memory(pid):
    out = {}
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                key = line.split(":", 1)[0]
                if key in ("VmRSS", "VmHWM"):
                    out[key] = int(line.split()[1])
    except OSError:
        pass
    return out.get("VmRSS", -1), out.get("VmHWM", -1)


def get(url, timeout=10):
    t = time.monotonic()
    try:
        with urllib.request.urlopen(url, timeout=timeout) as r:
            return r.status, r.read(), time.monotonic() - t
    except urllib.error.HTTPError as e:
        return e.code, e.read(), time.monotonic() - t
    except Exception as e:  # noqa: BLE001 — recorded, not fatal
        return -1, str(e).encode(), time.monotonic() - t


def metrics(port):
    status, body, _ = get(f"http://127.0.0.1:{port}/metrics")
    out = {}
    if status != 200:
        return out
    for line in body.decode().splitlines():
        if not line or line.startswith("#"):
            continue
        name, _, value = line.rpartition(" ")
        base = name.split("{", 1)[0]
        try:
            v = float(value)
        except ValueError:
            continue
        if base in WATCHED or base == "maillog_records_total":
            out[base] = out.get(base, 0) + v
    return out


def run(out, daylog, log, speed, start, pid, port):
    outlier_every = float(os.environ.get("OUTLIER_EVERY", 20))
    burst_every = float(os.environ.get("BURST_EVERY", 120))
    burst = int(os.environ.get("BURST", 300))
    top_every = float(os.environ.get("TOP_EVERY", 30))
    tail = float(os.environ.get("TAIL", 30))
    rng = random.Random(13)

    with open(daylog) as f:
        lines = f.readlines()
    # Record lines to copy as outliers: the message after the ISO stamp.
    bodies = [ln.split(" ", 1)[1] for ln in lines if " from=<" in ln or " to=<" in ln]
    bodies = [b for b in bodies if "sendmail" in b or "sm-mta" in b][:20000]

    stop = threading.Event()
    t0 = time.time()

    def sampler():
        with open(os.path.join(out, "rss.tsv"), "w") as f:
            f.write("t\trss_kb\thwm_kb\n")
            while not stop.is_set():
                rss, hwm = memory(pid)
                f.write(f"{time.time() - t0:.1f}\t{rss}\t{hwm}\n")
                f.flush()
                stop.wait(1.0 - (time.time() - t0) % 1.0)

    def scraper():
        with open(os.path.join(out, "metrics.jsonl"), "w") as m, open(os.path.join(out, "top.tsv"), "w") as tp:
            tp.write("t\tby\twindow\tstatus\tseconds\trecords\tkeys\tapproximate\n")
            next_top = 5.0
            while not stop.is_set():
                e = time.time() - t0
                m.write(json.dumps({"t": round(e, 1), **metrics(port)}) + "\n")
                m.flush()
                if e >= next_top:
                    next_top += top_every
                    for by in DIMS:
                        for w in WINDOWS:
                            status, body, took = get(f"http://127.0.0.1:{port}/top?by={by}&n=10&window={w}")
                            records = keys = approx = "-"
                            if status == 200:
                                try:
                                    j = json.loads(body)
                                    records, keys, approx = j.get("records"), len(j.get("keys", [])), j.get("approximate")
                                except ValueError:
                                    status = -2
                            tp.write(f"{time.time() - t0:.1f}\t{by}\t{w}\t{status}\t{took:.4f}\t{records}\t{keys}\t{approx}\n")
                    tp.flush()
                stop.wait(10.0)

    threads = [threading.Thread(target=sampler), threading.Thread(target=scraper)]
    for t in threads:
        t.start()

    outl = open(os.path.join(out, "outliers.tsv"), "w")
    outl.write("t\tkind\tline\n")
    w = open(log, "a")
    i, n = 0, len(lines)
    next_outlier, next_burst = outlier_every, burst_every
    horizon = start
    behind_max = 0.0
    while i < n:
        now = time.time()
        e = now - t0
        # Event time allowed now: SPEED x the wall time elapsed, never past the wall clock.
        horizon = min(start + e * speed, now - 1)
        chunk = []
        while i < n and stamp_of(lines[i]) <= horizon:
            chunk.append(lines[i])
            i += 1
        extra = []
        if e >= next_outlier:
            next_outlier += outlier_every
            h = int(horizon)
            extra.append(("future-2099", iso(calendar.timegm((2099, rng.randint(1, 12), rng.randint(1, 28), rng.randint(0, 23), rng.randint(0, 59), 0))) + " " + rng.choice(bodies)))
            extra.append(("past-1999", iso(calendar.timegm((1999, rng.randint(1, 12), rng.randint(1, 28), rng.randint(0, 23), rng.randint(0, 59), 0))) + " " + rng.choice(bodies)))
            extra.append(("bsd-now", bsd(h) + " " + rng.choice(bodies)))
            extra.append(("bsd-random-day", bsd(h - rng.randint(0, 364) * 86400 - rng.randint(0, 86399)) + " " + rng.choice(bodies)))
        if e >= next_burst:
            next_burst += burst_every
            base = int(horizon) // 300 * 300
            for k in rng.sample(range(1, 30 * 288), burst):
                extra.append(("burst", iso(base - k * 300 + rng.randint(0, 299)) + " " + rng.choice(bodies)))
        if chunk or extra:
            w.write("".join(chunk) + "".join(line for _, line in extra))
            w.flush()
            for kind, line in extra:
                outl.write(f"{e:.1f}\t{kind}\t{line}")
        behind_max = max(behind_max, time.time() - now)
        time.sleep(max(0.0, 0.01 - (time.time() - now)))
    w.close()
    outl.close()
    fed = time.time() - t0
    time.sleep(tail)
    stop.set()
    for t in threads:
        t.join()
    with open(os.path.join(out, "run.json"), "w") as f:
        json.dump({"fed_seconds": fed, "lines": n, "last_event": stamp_of(lines[-1]), "end_wall": time.time(),
                   "feeder_longest_pass_seconds": behind_max, "tail_seconds": tail, "top_every": top_every,
                   "outlier_every": outlier_every, "burst_every": burst_every, "burst": burst}, f)
    print(f"soak: {n} lines fed in {fed:.0f} s", file=sys.stderr)


def pct(xs, q):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(q * len(xs)))]


def summarize(out):
    rows = [ln.split("\t") for ln in open(os.path.join(out, "rss.tsv")).read().splitlines()[1:]]
    rss = [(float(t), int(r), int(h)) for t, r, h in rows if int(r) > 0]
    end = rss[-1][0]
    mib = lambda kb: f"{kb / 1024:.1f}"  # noqa: E731
    allr = [r for _, r, _ in rss]
    run = json.load(open(os.path.join(out, "run.json")))
    print(f"The feeder's longest pass (what was due, written at once): {run['feeder_longest_pass_seconds']:.3f} s of wall time.")
    print()
    print(f"RSS of `maillog run`, read every second ({len(rss)} readings over {end:.0f} s; the feed "
          f"ended at {run['fed_seconds']:.0f} s): **max {mib(max(allr))} MiB, median {mib(statistics.median(allr))} MiB**; "
          f"VmHWM (the kernel's peak) at the end {mib(rss[-1][2])} MiB.")
    print()
    ms = [json.loads(ln) for ln in open(os.path.join(out, "metrics.jsonl"))]
    cols = ["maillog_windows_open", "maillog_live_top_keys", "maillog_spool_files", "maillog_seconds_behind"]
    print("| part of the run (wall s) | event time reached (UTC) | RSS median / max (MiB) | VmHWM (MiB) | "
          + " | ".join(c.replace("maillog_", "") + " (last)" for c in cols) + " |")
    print("|---|---|---|---|" + "---|" * len(cols))
    for k in range(10):
        lo, hi = end * k / 10, end * (k + 1) / 10
        part = [(t, r, h) for t, r, h in rss if lo <= t < hi or (k == 9 and t == hi)]
        if not part:
            continue
        mpart = [m for m in ms if lo <= m["t"] < hi or (k == 9 and m["t"] >= hi)]
        last = mpart[-1] if mpart else {}
        rec = "–"
        if "speed" in run and "start" in run:
            rec = time.strftime("%m-%d %H:%M", time.gmtime(min(run["start"] + hi * run["speed"], run["last_event"])))
        vals = [("%g" % last[c]) if c in last else "–" for c in cols]
        print(f"| {lo:.0f}–{hi:.0f} | {rec} | {mib(statistics.median([r for _, r, _ in part]))} / {mib(max(r for _, r, _ in part))} | "
              f"{mib(max(h for _, _, h in part))} | " + " | ".join(vals) + " |")
    print()
    if ms:
        first, last = ms[0], ms[-1]
        print("Metrics at the end of the feed's last scrape (max over the run in brackets): "
              + "; ".join(f"`{c}` {last.get(c, '–'):g} (max {max(m.get(c, 0) for m in ms):g})" for c in WATCHED if c in last)
              + f"; `maillog_records_total` {last.get('maillog_records_total', 0):g}.")
        print()
    tops = [ln.split("\t") for ln in open(os.path.join(out, "top.tsv")).read().splitlines()[1:]]
    if tops:
        ok = [t for t in tops if t[3] == "200"]
        secs = [float(t[4]) for t in tops]
        approx = sum(1 for t in ok if t[7] == "True")
        print(f"/top: {len(tops)} queries (every dimension × 5m, 1h, 24h, every {run['top_every']:g} s): "
              f"{len(ok)} answered 200, {len(tops) - len(ok)} not; time median {statistics.median(secs) * 1000:.1f} ms, "
              f"max {max(secs) * 1000:.1f} ms; {approx} answers `approximate: true`.")
        last24 = [t for t in ok if t[2] == "24h"][-6:]
        if last24:
            print("Last 24h answers: " + ", ".join(f"{t[1]} {t[5]} records" for t in last24) + ".")
        print()
    kinds = {}
    for ln in open(os.path.join(out, "outliers.tsv")).read().splitlines()[1:]:
        k = ln.split("\t")[1]
        kinds[k] = kinds.get(k, 0) + 1
    print("Outlier lines written: " + ", ".join(f"{k} {v}" for k, v in sorted(kinds.items())) + ".")


def main():
    if sys.argv[1] == "run":
        d, daylog, log, speed, start, pid, port = sys.argv[2:9]
        run(d, daylog, log, float(speed), int(start), int(pid), int(port))
        j = json.load(open(os.path.join(d, "run.json")))
        j.update(speed=float(speed), start=int(start))
        json.dump(j, open(os.path.join(d, "run.json"), "w"))
    elif sys.argv[1] == "summarize":
        summarize(sys.argv[2])
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main()
