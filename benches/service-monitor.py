#!/usr/bin/env python3
"""The measuring side of benches/service.sh.

  service-monitor.py watch DIR LOG OBJECTS NAME=PID...
      Until SIGTERM: every second, appends to DIR/samples.tsv the time, the VmRSS (and its
      anonymous and file parts, its peak VmHWM, and the highest VmRSS of the ten 100 ms
      readings of that second) of the first PID, the lines LOG gained (newlines counted as
      they are written), the first PID's read position in LOG (from /proc/PID/fdinfo) and
      the CPU clock ticks (utime + stime) of every PID; every 100 ms, looks for new window
      files under OBJECTS (s3s-fs keeps objects as plain files) and appends their time of
      appearance and path to DIR/objects.tsv.
  service-monitor.py summarize DIR RATE FROM TO LATENESS FEED_START
      Reads those files over the measured period [FROM, TO] (epoch seconds) and writes
      DIR/summary.json: RSS median and max, CPU of every PID as percent of one core, lines/s
      syslog-ng wrote (mean, and min and max over 10 s), and every window file's seal-to-S3
      delay: its appearance time minus (window start + 300 s + LATENESS); a window that
      started before FEED_START is marked partial.
  service-monitor.py table DIR...
      Prints the summaries as Markdown tables.
"""

import datetime
import json
import os
import re
import signal
import statistics
import sys
import time
import zoneinfo

WINDOW = 300
NAME = re.compile(r"(from|to)-(\d{4})-(\d\d)-(\d\d)-(\d\d)-(\d\d)(\.part-\d+)?\.json\.bz2$")
TICK = os.sysconf("SC_CLK_TCK")  # the same as `getconf CLK_TCK`


def ticks(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            rest = f.read().rsplit(")", 1)[1].split()
        return int(rest[11]) + int(rest[12])  # fields 14 and 15: utime, stime
    except (OSError, IndexError, ValueError):
        return -1


def memory(pid):
    out = {"VmRSS": -1, "RssAnon": -1, "RssFile": -1, "VmHWM": -1}
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                key = line.split(":", 1)[0]
                if key in out:
                    out[key] = int(line.split()[1])
    except OSError:
        pass
    return out


def position(pid, log):
    """maillog's read offset in LOG, if it reads it through a file descriptor's position."""
    try:
        for fd in os.listdir(f"/proc/{pid}/fd"):
            try:
                if os.readlink(f"/proc/{pid}/fd/{fd}") == log:
                    with open(f"/proc/{pid}/fdinfo/{fd}") as f:
                        return int(f.readline().split()[1])
            except (OSError, ValueError, IndexError):
                continue
    except OSError:
        pass
    return -1


def watch(out, log, objects, pids):
    stop = []
    signal.signal(signal.SIGTERM, lambda *_: stop.append(1))
    names = [n for n, _ in pids]
    first = pids[0][1]
    samples = open(os.path.join(out, "samples.tsv"), "w")
    samples.write("\t".join(["t", "rss_kb", "anon_kb", "file_kb", "hwm_kb", "lines", "log_bytes", "read_pos"]
                            + [f"ticks_{n}" for n in names] + ["rss_max_kb"]) + "\n")
    found = open(os.path.join(out, "objects.tsv"), "w")
    seen = set()
    lines = 0
    offset = 0
    handle = None
    next_sample = time.time()
    rss_max = -1
    while not stop:
        now = time.time()
        rss_max = max(rss_max, memory(first)["VmRSS"])
        for root, _, files in os.walk(objects):
            for name in files:
                path = os.path.join(root, name)
                if not name.startswith(".") and path not in seen and NAME.search(name):
                    seen.add(path)
                    found.write(f"{now:.3f}\t{os.path.relpath(path, objects)}\n")
                    found.flush()
        if now >= next_sample:
            if handle is None and os.path.exists(log):
                handle = open(log, "rb")
            if handle is not None:
                while True:
                    chunk = handle.read(1 << 20)
                    if not chunk:
                        break
                    lines += chunk.count(b"\n")
                    offset += len(chunk)
            m = memory(first)
            row = [f"{now:.3f}", m["VmRSS"], m["RssAnon"], m["RssFile"], m["VmHWM"], lines, offset, position(first, log)]
            row += [ticks(p) for _, p in pids] + [max(rss_max, m["VmRSS"])]
            rss_max = -1
            samples.write("\t".join(map(str, row)) + "\n")
            samples.flush()
            next_sample += 1.0
        time.sleep(max(0.0, 0.1 - (time.time() - now)))


def read_tsv(path):
    with open(path) as f:
        head = f.readline().rstrip("\n").split("\t")
        return head, [line.rstrip("\n").split("\t") for line in f if line.strip()]


def summarize(d, rate, t0, t1, lateness, feed_start, zone="UTC"):
    head, rows = read_tsv(os.path.join(d, "samples.tsv"))
    col = {h: i for i, h in enumerate(head)}
    rows = [r for r in rows if t0 - 0.5 <= float(r[0]) <= t1 + 0.5]
    if len(rows) < 3:
        sys.exit(f"service-monitor: only {len(rows)} samples in the measured period of {d}")
    a, b = rows[0], rows[-1]
    span = float(b[0]) - float(a[0])
    rss = [int(r[col["rss_kb"]]) for r in rows if int(r[col["rss_kb"]]) > 0]
    rss_top = max(int(r[col["rss_max_kb" if "rss_max_kb" in col else "rss_kb"]]) for r in rows)
    # VmHWM is the process's peak, also between two readings: if it rose in the period, the
    # period's peak is known exactly.
    hwm_a, hwm_b = int(a[col["hwm_kb"]]), int(b[col["hwm_kb"]])
    hwm_at = next((float(r[0]) for r in rows if int(r[col["hwm_kb"]]) == hwm_b), None)
    anon = [int(r[col["anon_kb"]]) for r in rows if int(r[col["anon_kb"]]) > 0]
    cpu = {}
    for h in head:
        if h.startswith("ticks_"):
            x, y = int(a[col[h]]), int(b[col[h]])
            cpu[h[6:]] = round(100.0 * (y - x) / TICK / span, 2) if x >= 0 and y >= 0 else None
    lines = [(float(r[0]), int(r[col["lines"]])) for r in rows]
    per10 = []
    for i in range(0, len(lines) - 10, 10):
        (ta, la), (tb, lb) = lines[i], lines[i + 10]
        per10.append((lb - la) / (tb - ta))
    lag = int(b[col["log_bytes"]]) - int(b[col["read_pos"]]) if int(b[col["read_pos"]]) >= 0 else None
    delays = []
    for line in open(os.path.join(d, "objects.tsv")):
        seen, path = line.rstrip("\n").split("\t")
        m = NAME.search(path)
        kind, y, mo, dd, hh, mi, part = m.groups()
        # Window names are in the configured zone.
        start = datetime.datetime(int(y), int(mo), int(dd), int(hh), int(mi),
                                  tzinfo=zoneinfo.ZoneInfo(zone)).timestamp()
        seal = start + WINDOW + lateness
        delays.append({"object": os.path.basename(path), "kind": kind, "part": bool(part),
                       "full": start >= feed_start, "measured": t0 <= float(seen) <= t1,
                       "seal_point": time.strftime("%H:%M:%S", time.gmtime(seal)),
                       "appeared": time.strftime("%H:%M:%S", time.gmtime(float(seen))) + f".{int(float(seen) % 1 * 1000):03d}",
                       "delay": round(float(seen) - seal, 3)})
    b_hwm = os.path.join(d, "hwm-b")
    summary = {
        "b_peak_mib": round(int(open(b_hwm).read()) / 1024, 1) if os.path.exists(b_hwm) else None,
        "rate": rate, "seconds": round(span, 1), "lateness": lateness, "samples": len(rows),
        "from": time.strftime("%H:%M:%S", time.gmtime(t0)), "to": time.strftime("%H:%M:%S", time.gmtime(t1)),
        "rss_median_mib": round(statistics.median(rss) / 1024, 1), "rss_max_mib": round(rss_top / 1024, 1),
        "peak_mib": round(hwm_b / 1024, 1) if hwm_b > hwm_a else None,
        "peak_at": time.strftime("%H:%M:%S", time.gmtime(hwm_at)) if hwm_b > hwm_a and hwm_at else None,
        "peak_before_mib": round(hwm_a / 1024, 1),
        "anon_median_mib": round(statistics.median(anon) / 1024, 1) if anon else None,
        "hwm_mib": round(int(b[col["hwm_kb"]]) / 1024, 1),
        "cpu_percent": cpu,
        "lines_per_s": round((int(b[col["lines"]]) - int(a[col["lines"]])) / span),
        "lines_per_s_10s_min": round(min(per10)) if per10 else None,
        "lines_per_s_10s_max": round(max(per10)) if per10 else None,
        "read_lag_bytes_at_end": lag,
        "delays": delays,
    }
    with open(os.path.join(d, "summary.json"), "w") as f:
        json.dump(summary, f, indent=1)


def table(dirs):
    sums = [json.load(open(os.path.join(d, "summary.json"))) for d in dirs]
    print("| target rate, measured period | lines/s written by syslog-ng (min–max over 10 s) | maillog RSS median / max | "
          "maillog peak RSS (VmHWM) | maillog CPU (% of one core) | syslog-ng CPU | feeder CPU | s3s-fs CPU | maillog's read lag at the end |")
    print("|---|---|---|---|---|---|---|---|---|")
    for s in sums:
        c = s["cpu_percent"]
        lag = "n/a" if s["read_lag_bytes_at_end"] is None else f"{s['read_lag_bytes_at_end'] / 1024:.0f} KiB"
        if s.get("peak_mib"):
            peak = f"**{s['peak_mib']} MiB** (at {s['peak_at']})"
        else:
            peak = f"≤ {s['peak_before_mib']} MiB (not exceeded in the period)"
        print(f"| {s['rate']:,} lines/s, {s['from']}–{s['to']} UTC | {s['lines_per_s']:,} ({s['lines_per_s_10s_min']:,}–{s['lines_per_s_10s_max']:,}) "
              f"| **{s['rss_median_mib']} / {s['rss_max_mib']} MiB** | {peak} | **{c.get('maillog')}%** | {c.get('syslog-ng')}% "
              f"| {c.get('feeder')}% | {c.get('s3s-fs')}% | {lag} |")
    for s in sums:
        c = s["cpu_percent"]
        if c.get("maillog-b") is not None and c.get("maillog"):
            print()
            print(f"- maillog B (EXTRA_TOML_B) beside it at {s['rate']:,} lines/s, the same period: CPU **{c['maillog-b']}%** "
                  f"of one core, **{c['maillog-b'] / c['maillog']:.3f}** of maillog A's {c['maillog']}%; "
                  f"B's peak RSS (VmHWM, whole run) {s.get('b_peak_mib')} MiB")
    print()
    print("| target rate | window file | window | seal point (UTC) | in S3 at | seal-to-S3 delay |")
    print("|---|---|---|---|---|---|")
    alld = []
    for s in sums:
        for x in s["delays"]:
            alld.append(x["delay"])
            what = "full" if x["full"] else "partial (feed began in it)"
            if x["measured"]:
                what += ", in the measured period"
            print(f"| {s['rate']:,} | {x['object']} | {what} | {x['seal_point']} | {x['appeared']} | {x['delay']:.2f} s |")
    print()
    for s in sums:
        ds = [x["delay"] for x in s["delays"]]
        med = f"{statistics.median(ds):.2f} s" if ds else "no window sealed"
        print(f"- {s['rate']:,} lines/s: {len(ds)} window files, median seal-to-S3 delay {med} (lateness {s['lateness']} s)")
    if alld:
        print(f"- all: {len(alld)} window files, median **{statistics.median(alld):.2f} s**, max {max(alld):.2f} s")


def main():
    cmd = sys.argv[1]
    if cmd == "watch":
        out, log, objects = sys.argv[2:5]
        pids = [(a.split("=", 1)[0], int(a.split("=", 1)[1])) for a in sys.argv[5:]]
        watch(out, log, objects, pids)
    elif cmd == "summarize":
        d, rate, t0, t1, lateness, feed_start = sys.argv[2:8]
        zone = sys.argv[8] if len(sys.argv) > 8 else "UTC"
        summarize(d, int(rate), float(t0), float(t1), int(lateness), float(feed_start), zone)
    elif cmd == "table":
        table(sys.argv[2:])
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main()
