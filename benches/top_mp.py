#!/usr/bin/env python3
"""`maillog top --by dest -n N` in plain Python, the competitor of benches/top.sh.

One worker process per core (multiprocessing), each taking whole files off a shared queue:
bz2 (every stream of a multistream file) + json.loads per line + collections.Counter; the
parent merges the counters. The empty dest counts as `<>`, a record without dest is not
counted; order: count descending, then key ascending (code point order = UTF-8 byte order).

usage: benches/top_mp.py [-n N] [-j PROCS] FILE.json.bz2...
prints the top N as `COUNT<TAB>KEY` lines.
"""

import argparse
import bz2
import json
import os
import sys
from collections import Counter
from multiprocessing import Pool


def count_file(path):
    with open(path, "rb") as f:
        data = bz2.decompress(f.read())
    loads = json.loads
    counts = Counter()
    # A bare generator into Counter.update is counted in C (_count_elements).
    counts.update(
        dest or "<>"
        for dest in (loads(line).get("dest") for line in data.splitlines() if line)
        if dest is not None
    )
    return counts


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=10)
    parser.add_argument("-j", type=int, default=os.cpu_count())
    parser.add_argument("files", nargs="+")
    args = parser.parse_args()
    total = Counter()
    with Pool(args.j) as pool:
        for counts in pool.imap_unordered(count_file, args.files, chunksize=1):
            total.update(counts)
    top = sorted(total.items(), key=lambda kv: (-kv[1], kv[0]))[: args.n]
    out = sys.stdout.buffer
    for key, count in top:
        out.write(f"{count}\t{key}\n".encode("utf-8", "surrogatepass"))


if __name__ == "__main__":
    main()
