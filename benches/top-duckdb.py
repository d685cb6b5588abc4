"""Top N recipients with DuckDB over uncompressed NDJSON, for benches/top.sh.

A fresh in-memory connection with `threads` = PROCS, then one query that reads the file
(read_json, newline-delimited, only the dest column) and groups: the empty dest as `<>`, a
record without dest not counted, count descending then key ascending (DuckDB's default
collation compares bytes). Prints `COUNT<TAB>KEY` lines; the seconds of connect + query on
stderr as `duckdb-seconds S`.

usage: python top-duckdb.py NDJSON PROCS [N]
"""

import sys
import time

import duckdb


def main():
    path, procs = sys.argv[1], int(sys.argv[2])
    n = int(sys.argv[3]) if len(sys.argv) > 3 else 10
    start = time.perf_counter()
    con = duckdb.connect(":memory:")
    con.execute(f"SET threads = {procs}")
    rows = con.execute(
        """
        SELECT CASE WHEN dest = '' THEN '<>' ELSE dest END AS key, count(*) AS count
        FROM read_json(?, format = 'newline_delimited', columns = {dest: 'VARCHAR'})
        WHERE dest IS NOT NULL
        GROUP BY key
        ORDER BY count DESC, key
        LIMIT ?
        """,
        [path, n],
    ).fetchall()
    con.close()
    seconds = time.perf_counter() - start
    out = sys.stdout.buffer
    for key, count in rows:
        out.write(f"{count}\t{key}\n".encode())
    print(f"duckdb-seconds {seconds:.3f}", file=sys.stderr)


if __name__ == "__main__":
    main()
