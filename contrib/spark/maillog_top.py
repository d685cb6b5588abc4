"""maillog top / maillog report on Spark: the archive queries of crates/aggregate/QUERIES.md.

This file owns the Spark implementation of the archive queries. QUERIES.md is their one
definition; `maillog top` and `maillog report` (crates/aggregate) implement them again in Rust,
and crates/cli/tests/spark.rs checks that both give the same answers on the same archive.
Change both, or neither. It is one file, longer than the project's modules, on purpose: a job
that `spark-submit` and an EMR step take as it is, with no `--py-files` archive to build and
keep in step. Its parts, in order: arguments and time ranges; the sources (`Archive`, `Mirror`);
the record columns; `top`; `report`; the runner and `main`.

Usage (the arguments mirror maillog's; the answer is one JSON document on stdout, the job's
own log lines go to stderr, which `spark-submit` in local client mode may fold into its stdout:
the answer is then the last line that starts with `[` or `{`, or use `--format json` with
`python maillog_top.py`, whose streams stay apart):

    maillog_top.py top --by KEY [--kind from|to] [-n N] [--metric count|bytes] [--since T]
                   [--until T] [--day DATE] [--config FILE] [--where FIELD=VALUE]...
                   [--format table|json] [--source bzip2|parquet] PATH...
    maillog_top.py report [-n N] [--since T] [--until T] [--day DATE] [--config FILE]
                   [--format json] [--source bzip2|parquet] PATH...
    maillog_top.py batch --queries FILE.json

KEY is src, src_domain, mailserver, relay, dest, dest_domain, status or a known record field
(KEYS below; another name exits 2 with the closest one, as maillog does); T and DATE take
maillog's forms (TIME_FORMS, DAY_FORMS below), local times in the `time_zone` of the maillog
config FILE (UTC without one: the job reads nothing else of it). A PATH is a file (read as it is), a directory (its
archive files, `*.json`/`*.ndjson` plain, `.bz2` or `.gz`, at any depth: the archive's
`mail_logs/` or one date folder), or a Hadoop glob (`mail_logs/2026-01-*/to-*`); any scheme
Spark reads (`s3a://`, `s3://` on EMR, `hdfs://`, `file://`, a local path). The kind of a record
is its file name's (`from-…`, `to-…`, late parts `…part-001.json.bz2` included); in other files
its "kind" field's (as `maillog parse` writes it), or else `to` with a `dest` and `from` without.
A line that is not a JSON object is skipped and counted on stderr. Raw syslog is not read
here, so the report's `rejected` is null. `batch` reads a JSON list of argument lists (each a
`top` or `report` command line without the program name, paths included; FILE `-` is stdin) and
prints the JSON list of their answers: one Spark session for all, and an archive read once
(then cached) for every query that names the same paths.

Local mode (pyspark from PyPI brings Spark; Java 17 suffices; scripts/install-spark makes a venv
with it):

    python contrib/spark/maillog_top.py top --by dest -n 20 archive/mail_logs     # local[*]
    PYSPARK_SUBMIT_ARGS='--master local[2] pyspark-shell' python contrib/spark/maillog_top.py ...
    spark-submit --master 'local[4]' contrib/spark/maillog_top.py report archive/mail_logs

On EMR (Spark 3.x, S3 through EMRFS or s3a): on the primary node, with the answer on the
terminal (client mode),

    spark-submit maillog_top.py top --by dest_domain --since 2026-01-01 --until 2026-01-08 \
        s3a://my-mail-archive/mail_logs/
    spark-submit maillog_top.py report -n 25 's3a://my-mail-archive/mail_logs/2026-01-0*/'

or as a step (`aws emr add-steps … Type=Spark,Args=[--deploy-mode,cluster,
s3://my-bucket/jobs/maillog_top.py,top,--by,dest,s3://my-mail-archive/mail_logs/]`), where the
answer is the driver's stdout in the step's logs. Outside EMR, s3a needs the hadoop-aws of
Spark's Hadoop (pyspark 3.5: `--packages org.apache.hadoop:hadoop-aws:3.3.4`) and credentials
the usual way (environment, profile, instance role).

Multistream bzip2 (several streams concatenated, as maillog writes a window of more than one
900 kB block): Spark reads `.bz2` with Hadoop's BZip2Codec, which reads every stream of a file,
also where it splits a large file between tasks (checked with pyspark 3.5.5: 40 concatenated
streams, 16 splits, every line once); crates/cli/tests/spark.rs runs this job on an archive
holding a multistream file.

Reading: each line is parsed as a JSON object into a map of string to string (`from_json`), so
every field, known or not, is there by its name, and a record lacking a field has no value for
it.

`--source parquet` reads the Parquet mirror instead (crates/mirror/SCHEMA.md; `maillog compact
ARCHIVE_ROOT` writes it from a local archive): each PATH is an archive's root (the folder that
holds `mirror/`) or a `mirror/` folder itself, local or any scheme Spark reads, and the records
are those of `PATH/mirror/{from,to}/dt=YYYY-MM-DD/*.parquet` (the kind is the folder's). The
answers are the same as over the archive's JSON files (crates/cli/tests/spark.rs compares
them): a record is its string columns (null: no such field) and the entries of its `other`
map, so `--where` and `--by` read any field, a column or not. Each query reads only the
columns it uses, and only the `dt` folders its range may hold: `dt` is the local date of the
windows in the archive's `time_zone`, read in the zone of `--config` (give the archive's
config, as for maillog), with a day of slack on each side; a folder whose name is no date is
always read. Nothing is kept between queries: a batch reads the Parquet files again for each
query, a few columns each time (a report keeps the records it reads for its own dozen queries).
"""

import argparse
import json
import math
import re
import sys
import time
import tomllib
from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pyspark.sql import SparkSession
from pyspark.sql import functions as F
from pyspark.sql.types import MapType, StringType

# The known keys (QUERIES.md, "Keys"; crates/aggregate/src/names.rs) and the records that carry
# each, in the order an unknown key's error lists them. A key counts by default the kind that
# carries it, `from` for both.
KEYS = {
    "src": "from",
    "src_domain": "from",
    "mailserver": "both",
    "relay": "both",
    "dest": "to",
    "dest_domain": "to",
    "status": "to",
    "sendmailid": "both",
    "pid": "both",
    "month": "both",
    "day": "both",
    "time": "both",
    "ts": "both",
    "relay_ip": "both",
    "size": "from",
    "classnumber": "from",
    "nrcpts": "from",
    "msgid": "from",
    "delay": "to",
    "xdelay": "to",
    "stat": "to",
    "proto": "from",
    "daemon": "from",
    "bodytype": "from",
    "auth": "from",
    "mailer": "to",
    "pri": "to",
    "dsn": "to",
    "ntries": "to",
    "ctladdr": "to",
    "quarantine": "from",
    "orcpt": "to",
    "tls_verify": "to",
    "tls_version": "to",
    "cipher": "to",
}
DEFAULT_KIND = {key: "to" if carrier == "to" else "from" for key, carrier in KEYS.items()}
CARRIERS = {"from": "from records", "to": "to records", "both": "from and to records"}

UPPER = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
LOWER = "abcdefghijklmnopqrstuvwxyz"


def log(message):
    print(f"maillog_top: {message}", file=sys.stderr, flush=True)


# ---------------------------------------------------------------------------------------------
# Command lines


class UsageError(Exception):
    """A command line that cannot be run."""


class Parser(argparse.ArgumentParser):
    def error(self, message):
        raise UsageError(f"{self.prog}: {message}")


def jaro_winkler(a, b):
    """Jaro–Winkler similarity, as the Rust crate strsim computes it (maillog's did-you-mean)."""
    if not a and not b:
        return 1.0
    if not a or not b:
        return 0.0
    search = max(max(len(a), len(b)) // 2 - 1, 0)
    a_flags, b_flags = [False] * len(a), [False] * len(b)
    matches = 0
    for i, ch in enumerate(a):
        for j in range(max(i - search, 0), min(len(b), i + search + 1)):
            if not b_flags[j] and b[j] == ch:
                a_flags[i] = b_flags[j] = True
                matches += 1
                break
    if matches == 0:
        return 0.0
    b_matched = [ch for ch, flag in zip(b, b_flags, strict=True) if flag]
    a_matched = [ch for ch, flag in zip(a, a_flags, strict=True) if flag]
    transpositions = sum(x != y for x, y in zip(a_matched, b_matched, strict=True)) // 2
    sim = (matches / len(a) + matches / len(b) + (matches - transpositions) / matches) / 3
    if sim <= 0.7:
        return sim
    prefix = 0
    for x, y in zip(a[:4], b, strict=False):
        if x != y:
            break
        prefix += 1
    return sim + 0.1 * prefix * (1 - sim)


def key_arg(text):
    """A known key, or the error maillog gives: the closest key (above 0.8) and the list."""
    if text in KEYS:
        return text
    scored = [(jaro_winkler(text, known), known) for known in KEYS]
    best = max(scored, key=lambda pair: pair[0])
    hint = f" (did you mean `{best[1]}`?)" if best[0] > 0.8 else ""
    raise argparse.ArgumentTypeError(
        f"{json.dumps(text)} is not a key{hint}; the keys are {', '.join(KEYS)}"
    )


def where_arg(text):
    field, sep, value = text.partition("=")
    if not sep:
        raise argparse.ArgumentTypeError(f"expected FIELD=VALUE, got {text!r}")
    return (key_arg(field), value)


def check_kinds(by, kind, where):
    """A key the counted kind never carries would count nothing: maillog's usage error."""
    for option, key in [("--by", by)] + [("--where", field) for field, _ in where]:
        carrier = KEYS[key]
        if carrier not in (kind, "both"):
            raise UsageError(
                f"maillog_top: {option} {key}: `{key}` is on {CARRIERS[carrier]}, and this query counts "
                f"{kind} records; it would count nothing (a query counts one kind of record; it "
                "never joins a `from` record with its `to` records)"
            )


TIME_ARG = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})"
    r"(?:[Tt ](\d{2}):(\d{2})(?::(\d{2})(?:\.(\d+))?)?)?"
    r"(?:([Zz])|([+-])(\d{2}):(\d{2}))?"
)
CLOCK_ARG = re.compile(r"(\d{2}):(\d{2})(?::(\d{2}))?")
DURATION_PART = re.compile(r"\s*(\d+)\s*(weeks?|w|days?|d|hours?|hrs?|h|minutes?|mins?|m|seconds?|secs?|s)")
DURATION_UNIT = {"w": 604800, "d": 86400, "h": 3600, "m": 60, "s": 1}
TIME_FORMS = (
    "now, today, yesterday, a duration back from now (2h, 7d, 1h30m), YYYY-MM-DD[THH:MM[:SS]] "
    "or HH:MM in the configured time zone, or RFC 3339 with an offset"
)
DAY_FORMS = "today, yesterday or YYYY-MM-DD (a day in the configured time zone)"


def config_zone(path):
    """The `time_zone` of a maillog config file (UTC without one), as a tzinfo."""
    if path is None:
        return timezone.utc
    try:
        with open(path, "rb") as f:
            name = str(tomllib.load(f).get("time_zone", "UTC")).strip()
    except (OSError, tomllib.TOMLDecodeError) as e:
        raise UsageError(f"{path}: {e}") from None
    if name.upper() == "UTC" or name == "Z":
        return timezone.utc
    m = re.fullmatch(r"([+-])(\d{2}):?(\d{2})", name)
    if m:
        offset = timedelta(hours=int(m[2]), minutes=int(m[3]))
        return timezone(-offset if m[1] == "-" else offset)
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise UsageError(f"{path}: time_zone: unknown time zone {name!r}") from None


def local_instant(naive, tz):
    """A wall-clock time in `tz` as a UTC datetime: the earlier instant in an overlap, the
    offset from before a gap (fold=0), as maillog reads it."""
    return naive.replace(tzinfo=tz).astimezone(timezone.utc)


def day_range(text, tz, now):
    """`--day`: [the day's local midnight, the next one), or None if `text` is no day."""
    word = text.strip().lower()
    today = now.astimezone(tz).date()
    if word == "today":
        day = today
    elif word == "yesterday":
        day = today - timedelta(days=1)
    else:
        try:
            day = datetime.strptime(word, "%Y-%m-%d").date()
        except ValueError:
            return None
    start = datetime(day.year, day.month, day.day)
    return local_instant(start, tz), local_instant(start + timedelta(days=1), tz)


def time_spec(text, tz, now):
    """A `--since`/`--until` value as a UTC datetime (see TIME_FORMS)."""
    word = text.strip()
    if word.lower() == "now":
        return now
    day = day_range(word, tz, now)
    if day is not None:
        return day[0]
    m = TIME_ARG.fullmatch(word)
    if m:
        year, month, day, hour, minute, second, fraction, zulu, sign, oh, om = m.groups()
        if (zulu or sign) and second is None:
            raise UsageError(f"{text!r} is not a time: an offset needs HH:MM:SS")
        try:
            naive = datetime(
                int(year),
                int(month),
                int(day),
                int(hour or 0),
                int(minute or 0),
                int(second or 0),
                int((fraction or "0")[:6].ljust(6, "0")),
            )
        except ValueError as e:
            raise UsageError(f"{text!r} is not a time: {e}") from None
        if not (zulu or sign):
            return local_instant(naive, tz)
        offset = timedelta(hours=int(oh), minutes=int(om)) if sign else timedelta(0)
        offset = timezone(-offset if sign == "-" else offset)
        return naive.replace(tzinfo=offset).astimezone(timezone.utc)
    m = CLOCK_ARG.fullmatch(word)
    if m:
        today = now.astimezone(tz).date()
        clock = datetime(today.year, today.month, today.day, int(m[1]), int(m[2]), int(m[3] or 0))
        return local_instant(clock, tz)
    parts = DURATION_PART.findall(word)
    if parts and "".join(DURATION_PART.sub("", word).split()) == "":
        seconds = sum(int(n) * DURATION_UNIT[unit[0]] for n, unit in parts)
        return now - timedelta(seconds=seconds)
    raise UsageError(f"{text!r} is not a time: expected {TIME_FORMS}")


def resolve_range(args, now):
    """Sets `args.since`/`args.until` (UTC datetimes or None) from the typed `--since`,
    `--until`, `--day`, in the zone of `--config`, and `args.dates`, the mirror's dt folders
    that may hold the range (`dt_bounds`); usage errors as maillog has them."""
    tz = config_zone(args.config)
    set_range(args, now, tz)
    args.dates = dt_bounds(args.since, args.until, tz)


def set_range(args, now, tz):
    """`args.since`/`args.until` as UTC datetimes (see resolve_range)."""
    if args.day is not None:
        if args.since is not None or args.until is not None:
            raise UsageError("--day cannot be used with --since or --until")
        day = day_range(args.day, tz, now)
        if day is None:
            raise UsageError(f"{args.day!r} is not a day: expected {DAY_FORMS}")
        args.since, args.until = day
        return
    args.since = None if args.since is None else time_spec(args.since, tz, now)
    args.until = None if args.until is None else time_spec(args.until, tz, now)
    if args.since is not None and args.until is not None and args.until <= args.since:
        raise UsageError(f"the range [{args.since}, {args.until}) is empty: --until must be after --since")


def positive_int(text):
    n = int(text)
    if n < 0:
        raise argparse.ArgumentTypeError(f"expected a count, got {text!r}")
    return n


SOURCES = ["bzip2", "parquet"]
SOURCE_HELP = (
    "what the PATHs are: bzip2 (default), the archive's JSON files; parquet, archive roots "
    "(or their mirror/ folders) whose Parquet mirror is read (`maillog compact` writes it)"
)


def command_parser():
    parser = Parser(prog="maillog_top.py", description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)

    top = commands.add_parser("top", help="the first N keys of one dimension")
    top.add_argument("--by", required=True, type=key_arg, metavar="KEY")
    top.add_argument("--kind", choices=["from", "to"])
    top.add_argument("-n", "--limit", dest="n", type=positive_int, default=10)
    top.add_argument("--metric", choices=["count", "bytes"], default="count")
    top.add_argument("--since", metavar="T")
    top.add_argument("--until", metavar="T")
    top.add_argument("--day", metavar="DATE")
    top.add_argument("--config", metavar="FILE", help="the maillog config whose time_zone is used")
    top.add_argument("--where", type=where_arg, action="append", default=[], metavar="F=V")
    top.add_argument("--format", choices=["json", "table"], default="table")
    top.add_argument("--source", choices=SOURCES, default="bzip2", help=SOURCE_HELP)
    top.add_argument("paths", nargs="+", metavar="PATH")

    report = commands.add_parser("report", help="pflogsumm-like summary")
    report.add_argument("-n", "--limit", dest="n", type=positive_int, default=10)
    report.add_argument("--since", metavar="T")
    report.add_argument("--until", metavar="T")
    report.add_argument("--day", metavar="DATE")
    report.add_argument("--config", metavar="FILE", help="the maillog config whose time_zone is used")
    report.add_argument("--where", type=where_arg, action="append", default=[], metavar="F=V")
    report.add_argument("--format", choices=["json"], default="json")
    report.add_argument("--source", choices=SOURCES, default="bzip2", help=SOURCE_HELP)
    report.add_argument("paths", nargs="+", metavar="PATH")

    batch = commands.add_parser("batch", help="many queries in one Spark session")
    batch.add_argument("--queries", required=True, metavar="FILE.json")
    return parser


# ---------------------------------------------------------------------------------------------
# Records


class Source:
    """The records a query reads: rows of `kind` ("from", "to"), `r` (the record as a map of
    string to string: a field the record lacks is null) and, from `with_bytes`, `bytes`.

    Both sources give the queries that shape. A source has `rows` (a DataFrame of `kind` and
    the source's own columns), `field(name)` (a record's field as a column of `rows`),
    `as_records(rows, *extra)` (rows as `kind`, `r` and the extra columns) and `prune(rows,
    dates)` (rows left out that cannot be in a range; `dates` as `dt_bounds` gives them); a
    `cached` source keeps its rows and joined sizes in memory for every query of a batch.
    """

    cached = False

    def __init__(self):
        self._with_bytes = None

    def prune(self, rows, dates):
        return rows

    def records(self, dates=(None, None)):
        """The records (`kind`, `r`); with `dates`, at least those of the range."""
        return self.as_records(self.prune(self.rows, dates))

    def with_bytes(self, dates=(None, None)):
        """The records with `bytes`: a from record's size, a to record's joined from size."""
        if not self.cached:
            return self._joined(dates)
        if self._with_bytes is None:
            self._with_bytes = self._joined((None, None)).cache()
        return self._with_bytes

    def _joined(self, dates):
        field, kind = self.field, F.col("kind")
        size = size_number(field("size"))
        # One size per (sendmailid, mailserver), from every from record, in the range or not;
        # several from records under one pair (a queue id reused on a server) have the largest.
        sizes = (
            self.rows.filter(kind == "from")
            .select(
                field("sendmailid").alias("j_id"),
                field("mailserver").alias("j_server"),
                size.alias("j_size"),
            )
            .groupBy("j_id", "j_server")
            .agg(F.max("j_size").alias("j_size"))
        )
        rows = self.prune(self.rows, dates)
        joined = (
            rows.filter(kind == "to")
            .join(
                sizes,
                field("sendmailid").eqNullSafe(F.col("j_id"))
                & field("mailserver").eqNullSafe(F.col("j_server")),
                "left",
            )
            .select(*rows.columns, F.coalesce("j_size", F.lit(0)).alias("bytes"))
        )
        froms = rows.filter(kind == "from").select(*rows.columns, size.alias("bytes"))
        return self.as_records(froms.unionByName(joined), "bytes")


class Kept(Source):
    """A source's records (with bytes) of some dates, computed once and kept in memory until
    `release`: for a report, whose queries all read them."""

    cached = True

    def __init__(self, source, dates):
        super().__init__()
        self._with_bytes = source.with_bytes(dates).cache()

    def records(self, dates=(None, None)):
        return self._with_bytes.drop("bytes")

    def release(self):
        self._with_bytes.unpersist()


class Archive(Source):
    """The records of the archive's JSON files under some paths (`--source bzip2`): each line
    parsed into the map `r`, kept in memory (every query of a batch reads them)."""

    cached = True

    def __init__(self, spark, paths):
        super().__init__()
        files = archive_files(spark, paths)
        log(f"{', '.join(paths)}: {len(files)} files")
        if not files:
            raise UsageError(f"no archive files in {', '.join(paths)}")
        lines = spark.read.text(files).select(F.input_file_name().alias("file"), "value")
        name = F.regexp_extract("file", r"([^/]*)$", 1)
        parsed = lines.select(
            name.alias("name"),
            F.from_json("value", MapType(StringType(), StringType())).alias("r"),
        )
        name = F.col("name")
        by_name = F.when(name.startswith("from-"), "from").when(name.startswith("to-"), "to")
        by_key = F.when(F.col("r")["kind"].isin("from", "to"), F.col("r")["kind"])
        by_dest = F.when(F.col("r")["dest"].isNotNull(), "to").otherwise("from")
        kinded = parsed.select(
            F.coalesce(by_name, by_key, by_dest).alias("kind"),
            "r",
            F.col("r").isNull().alias("bad"),
        ).cache()
        counts = {
            (row["kind"], row["bad"]): row["count"]
            for row in kinded.groupBy("kind", "bad").count().collect()
        }
        skipped = sum(c for (_, bad), c in counts.items() if bad)
        log(
            f"{', '.join(paths)}: {counts.get(('from', False), 0)} from and "
            f"{counts.get(('to', False), 0)} to records"
            + (f"; {skipped} lines skipped (not a JSON object)" if skipped else "")
        )
        self.rows = kinded.filter(~F.col("bad")).drop("bad")

    def field(self, name):
        return F.col("r")[name]

    def as_records(self, rows, *extra):
        return rows.select("kind", "r", *extra)


# The columns of the mirror that are not a record's string fields (crates/mirror/SCHEMA.md),
# and `dt`, its partition folders' date.
MIRROR_NOT_FIELDS = {
    "kind", "other", "ts_utc", "size_bytes", "delay_seconds", "xdelay_seconds", "dt"
}
# The keys that are no field of a record: computed from one (`key_value`).
DERIVED_KEYS = {"src_domain", "dest_domain", "status"}
# How far outside a range a dt folder's day is still read: a window's records may carry a
# `ts` a little outside the window, and the query's zone may not be the archive's.
DT_SLACK = timedelta(days=1)


class Mirror(Source):
    """The records of the Parquet mirror (`--source parquet`; crates/mirror/SCHEMA.md) under
    some paths: `mirror/{kind}/dt=YYYY-MM-DD/*.parquet` of each, read by Spark's Parquet reader.

    A record's string fields are its string columns (null: the record lacks the field) and the
    entries of `other`; the kind is its folder's. `r` is built over them as a map of every
    field a query can name (the record fields of KEYS, and every string column): a query reads
    `r[FIELD]` with FIELD a literal, which Spark's optimizer turns into that column (or
    `other[FIELD]`), so only the columns a query uses are read. Nothing is kept in memory:
    each query reads again what it needs, only the dt folders its range may hold (`prune`);
    a report keeps its records (`Kept`).
    """

    def __init__(self, spark, paths):
        super().__init__()
        jvm = spark.sparkContext._jvm
        conf = spark.sparkContext._jsc.hadoopConfiguration()
        kinds = []
        for path in paths:
            mirror = mirror_folder(jvm, conf, path)
            found = 0
            for kind in ("from", "to"):
                base = f"{mirror}/{kind}"
                pattern = f"{base}/dt=*/*.parquet"
                hadoop_path = jvm.org.apache.hadoop.fs.Path(pattern)
                files = hadoop_path.getFileSystem(conf).globStatus(hadoop_path) or []
                log(f"{path}: {len(files)} {kind} files in {base}/")
                if files:
                    found += len(files)
                    kinds.append(
                        spark.read.option("basePath", base)
                        .parquet(pattern)
                        .drop("kind")
                        .withColumn("kind", F.lit(kind))
                    )
            if not found:
                raise UsageError(
                    f"{path}: the Parquet mirror {mirror}/ holds no files "
                    f"({mirror}/{{from,to}}/dt=*/*.parquet); `maillog compact` writes them"
                )
        rows = kinds[0]
        for more in kinds[1:]:
            rows = rows.unionByName(more, allowMissingColumns=True)
        self.rows = rows
        self.strings = {
            f.name
            for f in rows.schema.fields
            if isinstance(f.dataType, StringType) and f.name not in MIRROR_NOT_FIELDS
        }
        names = sorted(self.strings | (set(KEYS) - DERIVED_KEYS))
        self.record = F.create_map(*[c for name in names for c in (F.lit(name), self.field(name))])

    def field(self, name):
        return F.col(name) if name in self.strings else F.col("other")[name]

    def as_records(self, rows, *extra):
        return rows.select("kind", self.record.alias("r"), *extra)

    def prune(self, rows, dates):
        """The rows of the dt folders from `dates[0]` to `dates[1]` (either open), and of any
        folder whose name is no date."""
        first, last = dates
        if first is None and last is None:
            return rows
        dt = F.col("dt").cast("string")
        inside = F.lit(True)
        if first is not None:
            inside = inside & (dt >= first.isoformat())
        if last is not None:
            inside = inside & (dt <= last.isoformat())
        return rows.filter(~dt.rlike(r"\A[0-9]{4}-[0-9]{2}-[0-9]{2}\z") | inside)


def mirror_folder(jvm, conf, path):
    """PATH's mirror folder: PATH/mirror/ of an archive root, or PATH itself if it holds
    `from/` or `to/`; a UsageError naming PATH if neither."""
    hadoop_path = jvm.org.apache.hadoop.fs.Path(path)
    fs = hadoop_path.getFileSystem(conf)
    if not fs.exists(hadoop_path):
        raise UsageError(f"{path}: no such file or directory")
    for folder in (jvm.org.apache.hadoop.fs.Path(hadoop_path, "mirror"), hadoop_path):
        for kind in ("from", "to"):
            sub = jvm.org.apache.hadoop.fs.Path(folder, kind)
            if fs.exists(sub) and fs.getFileStatus(sub).isDirectory():
                return folder.toString().rstrip("/")
    raise UsageError(
        f"{path}: no Parquet mirror here (neither {path.rstrip('/')}/mirror/ nor a mirror folder "
        "holding from/ or to/); `maillog compact ARCHIVE_ROOT` writes it, then give the "
        "archive's root"
    )


def dt_bounds(since, until, tz):
    """The first and last mirror dt (a local date in `tz`, the zone of the windows) whose day,
    widened by DT_SLACK on each side, meets [since, until); None for an open side (or a date
    beyond the calendar)."""

    def midnight(day):
        return local_instant(datetime(day.year, day.month, day.day), tz)

    one = timedelta(days=1)
    first = last = None
    try:
        if since is not None:
            first = since.astimezone(tz).date() - 3 * one
            while midnight(first + one) + DT_SLACK <= since:
                first += one
        if until is not None:
            last = until.astimezone(tz).date() + 3 * one
            while midnight(last) - DT_SLACK >= until:
                last -= one
    except OverflowError:
        return (None, None)
    return (first, last)


def is_archive_name(name):
    """An archive file's name (or other tools' NDJSON): *.json, *.ndjson, plain, .bz2 or .gz."""
    for suffix in (".bz2", ".gz"):
        if name.endswith(suffix):
            name = name[: -len(suffix)]
            break
    return not name.startswith(".") and name.endswith((".json", ".ndjson"))


def archive_files(spark, paths):
    """The files PATHs name: a file as it is; a directory's archive files, recursively; a glob's
    matches, each of them so. Through Hadoop's FileSystem, so any scheme Spark reads works."""
    jvm = spark.sparkContext._jvm
    conf = spark.sparkContext._jsc.hadoopConfiguration()
    files = []
    for path in paths:
        hadoop_path = jvm.org.apache.hadoop.fs.Path(path)
        fs = hadoop_path.getFileSystem(conf)
        matches = fs.globStatus(hadoop_path)
        if not matches:
            raise UsageError(f"{path}: no such file or directory")
        for status in matches:
            if not status.isDirectory():
                files.append(status.getPath().toString())
                continue
            found = []
            listing = fs.listFiles(status.getPath(), True)
            while listing.hasNext():
                file = listing.next().getPath()
                if is_archive_name(file.getName()):
                    found.append(file.toString())
            files.extend(sorted(found))
    return files


def size_number(column):
    """A size as a number; 0 when absent, not a decimal number, or beyond a long (2^63 - 1)."""
    number = F.when(column.rlike(r"\A[0-9]+\z"), column.cast("long"))
    return F.coalesce(number, F.lit(0).cast("long"))


def ascii_lower(column):
    return F.translate(column, UPPER, LOWER)


def address(column):
    """`src`/`dest`: the empty address as `<>`."""
    return F.when(column == "", F.lit("<>")).otherwise(column)


def domain(column):
    """The text after the last `@`, ASCII-lowercased; none without `@` or nothing after it."""
    after = F.substring_index(column, "@", -1)
    return F.when(column.contains("@") & (after != ""), ascii_lower(after))


def status(r):
    """Sent/Deferred/Bounced by the first character of dsn; else by stat; none without both."""
    dsn, stat = r["dsn"], r["stat"]
    first = F.substring(dsn, 1, 1)
    return (
        F.when(first == "2", "Sent")
        .when(first == "4", "Deferred")
        .when(first == "5", "Bounced")
        .when(stat.startswith("Sent"), "Sent")
        .when(stat.startswith("Deferred"), "Deferred")
        .when(ascii_lower(F.substring(stat, 1, 6)) == "queued", "Queued")
        .when(stat.isNotNull(), "Other")
    )


def key_value(key):
    """The value a record has for KEY (a column; null where it has none)."""
    r = F.col("r")
    if key in ("src", "dest"):
        return address(r[key])
    if key in ("src_domain", "dest_domain"):
        return domain(r[key[: -len("_domain")]])
    if key == "status":
        return status(r)
    return r[key]


def delay_seconds(column):
    """`[D+]HH:MM:SS` in seconds; null for anything else."""
    pattern = r"\A(?:([0-9]+)\+)?([0-9]+):([0-9]+):([0-9]+)\z"

    def part(i):
        return F.regexp_extract(column, pattern, i)

    days = F.when(part(1) == "", F.lit(0)).otherwise(part(1).cast("long"))
    seconds = (
        days * 86400
        + part(2).cast("long") * 3600
        + part(3).cast("long") * 60
        + part(4).cast("long")
    )
    return F.when(column.rlike(pattern), seconds)


# ---------------------------------------------------------------------------------------------
# Queries


def top(
    archive,
    by,
    kind=None,
    n=10,
    metric="count",
    since=None,
    until=None,
    where=(),
    bytes_=False,
    check=True,
    dates=(None, None),
):
    """`maillog top`: [{"key", "count", "bytes"?}], first N by the metric, ties by key.

    `bytes` is in the answer for `from` records, with the bytes metric, or when `bytes_` asks.
    `check=False` (the report's lists): a `where` on the other kind's field is no error; it
    leaves nothing. `dates`: the mirror's dt folders that may hold the range (`dt_bounds`).
    """
    kind = kind or DEFAULT_KIND[by]
    if check:
        check_kinds(by, kind, where)
    with_bytes = kind == "from" or metric == "bytes" or bytes_
    records = archive.with_bytes(dates) if with_bytes else archive.records(dates)
    records = records.filter(F.col("kind") == kind)
    for field, value in where:
        records = records.filter(key_value(field) == value)
    records = in_range(records, since, until)
    keyed = records.select(
        key_value(by).alias("key"),
        (F.col("bytes") if with_bytes else F.lit(0).cast("long")).alias("bytes"),
    ).filter(F.col("key").isNotNull())
    rows = (
        keyed.groupBy("key")
        .agg(F.count(F.lit(1)).alias("count"), F.sum("bytes").alias("bytes"))
        .orderBy(F.col(metric).desc(), F.col("key").asc())
        .limit(n)
        .collect()
    )
    answer = []
    for row in rows:
        entry = {"key": row["key"], "count": row["count"]}
        if with_bytes:
            entry["bytes"] = row["bytes"]
        answer.append(entry)
    return answer


def in_range(records, since, until):
    """`--since`/`--until`: records whose `ts` is at or after `since` and before `until`; none
    without a `ts` when either is given."""
    if since is None and until is None:
        return records
    ts = F.col("r")["ts"].cast("timestamp")
    records = records.filter(ts.isNotNull())
    if since is not None:
        records = records.filter(ts >= spark_instant(since))
    if until is not None:
        records = records.filter(ts < spark_instant(until))
    return records


def spark_instant(at):
    """An aware datetime as a Spark timestamp literal (microseconds, exact)."""
    return F.lit(at.strftime("%Y-%m-%dT%H:%M:%S.%fZ")).cast("timestamp")


def masked(text):
    """A reason's text with what differs from message to message masked (QUERIES.md)."""
    for pattern, mask in REASON_MASKS:
        text = F.regexp_replace(text, pattern, mask)
    return F.trim(F.regexp_replace(text, r"\s+", " "))


REASON_MASKS = [
    (r"<[^>]*>", "<>"),
    (r"\[[^\]]*\]", "[]"),
    (r"\b(?:[0-9]{1,3}\.){3}[0-9]{1,3}\b", "*"),
    (r"(?:[A-Za-z0-9-]+\.)+[A-Za-z][A-Za-z0-9-]*\.?", "*"),
]
SIZE_BOUNDS = [1 << 10, 10 << 10, 100 << 10, 1 << 20, 10 << 20]


def reasons(records, which, n):
    """The first N (dsn, masked stat) groups of the `to` records of status `which`."""
    r = F.col("r")
    rows = (
        records.filter((F.col("kind") == "to") & (status(r) == which))
        .select(
            F.when(r["dsn"] != "", r["dsn"]).alias("dsn"),
            masked(F.regexp_replace(F.coalesce(r["stat"], F.lit("")), r"^Deferred(: )?", "")).alias(
                "reason"
            ),
        )
        .groupBy("dsn", "reason")
        .agg(F.count(F.lit(1)).alias("count"))
        .orderBy(F.col("count").desc(), F.col("dsn").asc_nulls_first(), F.col("reason").asc())
        .limit(n)
        .collect()
    )
    return [{"dsn": row["dsn"], "reason": row["reason"], "count": row["count"]} for row in rows]


def message_sizes(records):
    """Count, smallest, largest, mean and decades of the `from` records' sizes."""
    sizes = records.filter(F.col("kind") == "from").select(F.col("bytes").alias("b"))
    bounds = [None, *SIZE_BOUNDS, None]
    buckets = []
    for low, high in zip(bounds, bounds[1:], strict=False):
        inside = F.lit(True)
        if low is not None:
            inside = inside & (F.col("b") >= low)
        if high is not None:
            inside = inside & (F.col("b") < high)
        buckets.append(F.sum(F.when(inside, 1).otherwise(0)).alias(f"bucket{len(buckets)}"))
    row = sizes.select(
        F.count(F.lit(1)).alias("messages"),
        F.min("b").alias("min"),
        F.max("b").alias("max"),
        F.avg("b").alias("mean"),
        *buckets,
    ).collect()[0]
    return {
        "messages": row["messages"],
        "min": row["min"],
        "max": row["max"],
        "mean": row["mean"],
        "buckets": [
            {"up_to": high, "count": row[f"bucket{i}"] or 0}
            for i, high in enumerate([*SIZE_BOUNDS, None])
        ],
    }


def report(archive, n=10, since=None, until=None, where=(), dates=(None, None)):
    """`maillog report`: totals, per day and per hour, the top lists, the recipient domains,
    the reasons and the message sizes. Its dozen queries read the same records: those of a
    source that does not keep them (the mirror's) are kept in memory for the report."""
    if archive.cached:
        return report_of(archive, n, since, until, where, dates)
    kept = Kept(archive, dates)
    try:
        return report_of(kept, n, since, until, where, dates)
    finally:
        kept.release()


def report_of(archive, n, since, until, where, dates):
    # The size join looks at every from record, in the range or not.
    records = in_range(archive.with_bytes(dates), since, until)
    for field, value in where:
        records = records.filter(key_value(field) == value)
    ranged = {"since": since, "until": until, "where": where, "check": False, "dates": dates}
    r = F.col("r")
    is_from = F.col("kind") == "from"
    is_to = F.col("kind") == "to"
    st = F.when(is_to, status(r))

    def counted(condition):
        return F.sum(F.when(condition, 1).otherwise(0))

    totals = records.select(
        counted(is_from).alias("received"),
        counted(st == "Sent").alias("delivered"),
        counted(st == "Deferred").alias("deferred"),
        counted(st == "Bounced").alias("bounced"),
        F.sum(F.when(is_from, F.col("bytes")).otherwise(0)).alias("bytes_received"),
        F.sum(F.when(st == "Sent", F.col("bytes")).otherwise(0)).alias("bytes_delivered"),
        F.countDistinct(F.when(is_from, address(r["src"]))).alias("senders"),
        F.countDistinct(F.when(is_to, address(r["dest"]))).alias("recipients"),
    ).collect()[0]

    hours = {
        f"{h:02d}": {"received": 0, "delivered": 0, "deferred": 0, "bounced": 0} for h in range(24)
    }
    per_hour = (
        records.select(
            F.substring(r["time"], 1, 2).alias("hour"), is_from.alias("f"), st.alias("st")
        )
        .groupBy("hour")
        .agg(
            counted(F.col("f")).alias("received"),
            counted(F.col("st") == "Sent").alias("delivered"),
            counted(F.col("st") == "Deferred").alias("deferred"),
            counted(F.col("st") == "Bounced").alias("bounced"),
        )
        .collect()
    )
    for row in per_hour:
        if row["hour"] in hours:
            hours[row["hour"]] = {
                k: row[k] for k in ("received", "delivered", "deferred", "bounced")
            }

    per_day = (
        records.select(
            F.substring(r["ts"], 1, 10).alias("day"), is_from.alias("f"), st.alias("st")
        )
        .filter(F.col("day").isNotNull() & (F.length("day") == 10))
        .groupBy("day")
        .agg(
            counted(F.col("f")).alias("received"),
            counted(F.col("st") == "Sent").alias("delivered"),
            counted(F.col("st") == "Deferred").alias("deferred"),
            counted(F.col("st") == "Bounced").alias("bounced"),
        )
        .orderBy("day")
        .collect()
    )

    sent = F.col("st") == "Sent"
    domains = (
        records.filter(is_to)
        .select(
            domain(r["dest"]).alias("domain"), status(r).alias("st"), "bytes", r["delay"].alias("d")
        )
        .filter(F.col("domain").isNotNull())
        .select("domain", "st", "bytes", F.when(sent, delay_seconds(F.col("d"))).alias("delay"))
        .groupBy("domain")
        .agg(
            F.count(F.lit(1)).alias("count"),
            counted(sent).alias("delivered"),
            counted(F.col("st") == "Deferred").alias("deferred"),
            counted(F.col("st") == "Bounced").alias("bounced"),
            F.sum(F.when(sent, F.col("bytes")).otherwise(0)).alias("bytes"),
            F.avg("delay").alias("avg_delay"),
            F.max("delay").alias("max_delay"),
        )
        .orderBy(F.col("count").desc(), F.col("domain").asc())
        .limit(n)
        .collect()
    )

    return {
        "totals": {
            "received": totals["received"],
            "delivered": totals["delivered"],
            "deferred": totals["deferred"],
            "bounced": totals["bounced"],
            "rejected": None,  # raw syslog is not read here: every input is an archive
            "bytes_received": totals["bytes_received"],
            "bytes_delivered": totals["bytes_delivered"],
            "senders": totals["senders"],
            "recipients": totals["recipients"],
        },
        "per_day": [
            {"day": row["day"], **{k: row[k] for k in ("received", "delivered", "deferred", "bounced")}}
            for row in per_day
        ],
        "per_hour": [{"hour": h, **hours[h]} for h in sorted(hours)],
        "top_senders_by_count": top(archive, "src", n=n, **ranged),
        "top_senders_by_bytes": top(archive, "src", n=n, metric="bytes", **ranged),
        "top_recipients_by_count": top(archive, "dest", n=n, bytes_=True, **ranged),
        "top_recipients_by_bytes": top(archive, "dest", n=n, metric="bytes", **ranged),
        "domains": [
            {
                "domain": row["domain"],
                "count": row["count"],
                "delivered": row["delivered"],
                "deferred": row["deferred"],
                "bounced": row["bounced"],
                "bytes": row["bytes"],
                "avg_delay": row["avg_delay"],
                "max_delay": row["max_delay"],
            }
            for row in domains
        ],
        "received_domains": top(archive, "src_domain", n=n, **ranged),
        "top_relays": top(archive, "relay", n=n, **ranged),
        "deferral_reasons": reasons(records, "Deferred", n),
        "bounce_reasons": reasons(records, "Bounced", n),
        "reject_reasons": None,  # raw syslog is not read here
        "message_sizes": message_sizes(records),
    }


# ---------------------------------------------------------------------------------------------
# Running


def human(size):
    """Bytes as maillog's tables give them: `512 B`, `1.5 KiB`, `11.8 MiB` (IEC units)."""
    if size < 1024:
        return f"{size} B"
    exp = min(int(math.log(size) / math.log(1024)), 6)
    return f"{size / 1024**exp:.1f} {'KMGTPE'[exp - 1]}iB"


def table(answer, key):
    """A top-N answer as maillog prints it: count and bytes right-aligned, then the key."""
    numbers = ["count"] + (["bytes"] if any("bytes" in entry for entry in answer) else [])

    def cell(entry, n):
        value = entry.get(n)
        return "" if value is None else human(value) if n == "bytes" else str(value)

    widths = [max([len(n)] + [len(cell(entry, n)) for entry in answer]) for n in numbers]

    def line(cells, last):
        return "  ".join([c.rjust(w) for c, w in zip(cells, widths, strict=True)] + [last])

    rows = [line([cell(entry, n) for n in numbers], entry["key"]) for entry in answer]
    return "\n".join([line(numbers, key)] + rows)


class Runner:
    """Runs parsed command lines in one Spark session, opening each source (a `--source` and
    its paths) once."""

    def __init__(self, spark):
        self.spark = spark
        self.archives = {}

    def archive(self, source, paths):
        key = (source, tuple(paths))
        if key not in self.archives:
            reader = Mirror if source == "parquet" else Archive
            self.archives[key] = reader(self.spark, key[1])
        return self.archives[key]

    def run(self, args):
        archive = self.archive(args.source, args.paths)
        if args.command == "top":
            return top(
                archive,
                args.by,
                kind=args.kind,
                n=args.n,
                metric=args.metric,
                since=args.since,
                until=args.until,
                where=args.where,
                dates=args.dates,
            )
        return report(
            archive,
            n=args.n,
            since=args.since,
            until=args.until,
            where=args.where,
            dates=args.dates,
        )


def spark_session():
    # The master is spark-submit's (or PYSPARK_SUBMIT_ARGS'); without one, local[*].
    spark = (
        SparkSession.builder.appName("maillog_top")
        .config("spark.sql.session.timeZone", "UTC")
        # A record's map keeps the last of a repeated key, as the archive's readers do.
        .config("spark.sql.mapKeyDedupPolicy", "LAST_WIN")
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
        # Adaptive execution may coalesce the shuffle partitions of the cached, joined records.
        .config("spark.sql.optimizer.canChangeCachedPlanOutputPartitioning", "true")
        .getOrCreate()
    )
    spark.sparkContext.setLogLevel("WARN")
    if spark.sparkContext.master.startswith("local"):
        # One machine: a few shuffle partitions, not Spark's 200 (a task each, mostly empty).
        spark.conf.set(
            "spark.sql.shuffle.partitions", str(2 * spark.sparkContext.defaultParallelism)
        )
    return spark


def main(argv):
    parser = command_parser()
    try:
        args = parser.parse_args(argv)
        if args.command == "batch":
            queries = read_batch(parser, args.queries)
        else:
            queries = [(argv, args)]
        now = datetime.now(timezone.utc)
        for _, query in queries:
            resolve_range(query, now)
            if query.command == "top":
                check_kinds(query.by, query.kind or DEFAULT_KIND[query.by], query.where)
    except UsageError as e:
        print(e, file=sys.stderr)
        return 2

    spark = spark_session()
    try:
        runner = Runner(spark)
        answers = []
        for i, (words, query) in enumerate(queries):
            started = time.monotonic()
            answers.append(runner.run(query))
            seconds = time.monotonic() - started
            log(f"query {i + 1}/{len(queries)} ({seconds:.1f} s): {' '.join(words)}")
    except UsageError as e:
        print(e, file=sys.stderr)
        return 2
    finally:
        spark.stop()

    if args.command == "batch":
        print(json.dumps(answers))
    elif args.command == "top" and args.format == "table":
        print(table(answers[0], args.by))
    else:
        print(json.dumps(answers[0]))
    return 0


def read_batch(parser, source):
    """The queries of a batch file (`-`: stdin), as (arguments, parsed) pairs."""
    try:
        text = sys.stdin.read() if source == "-" else open(source).read()
        queries = json.loads(text)
    except (OSError, ValueError) as e:
        raise UsageError(f"{source}: {e}") from None
    if not isinstance(queries, list) or not all(
        isinstance(q, list) and all(isinstance(a, str) for a in q) for q in queries
    ):
        raise UsageError(f"{source}: expected a JSON list of argument lists")
    parsed = [(q, parser.parse_args(q)) for q in queries]
    if any(args.command == "batch" for _, args in parsed):
        raise UsageError(f"{source}: a batch cannot hold a batch")
    return parsed


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
