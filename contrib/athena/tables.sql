-- Athena tables over the maillog archive (../../../shared/CONTRACT.md; README.md beside this file).
--
-- This file owns the Athena DDL: one external table over the archive's date folders, with
-- partition projection on the folder's date, and the two views that split it by kind, `mail_from`
-- and `mail_to`, with the keys of crates/aggregate/QUERIES.md as extra columns.
--
-- Why one table and two views: both kinds live in the same folder
-- (mail_logs/2026-01-01/from-2026-01-01-00-05.json.bz2, …/to-2026-01-01-00-05.json.bz2), and
-- an Athena table reads every file under its partition's location; neither LOCATION nor
-- 'storage.location.template' can name files, only folders. So the table reads both kinds
-- (every column is a string, a field a record lacks reads NULL), and each view keeps the rows
-- of one kind by the file name, through the "$path" pseudo-column (the S3 URI of the row's file).
--
-- At the end, two Parquet tables over the archive's mirror (crates/mirror/SCHEMA.md), one per
-- kind, `mirror_from` and `mirror_to`: the same records, written by `maillog compact` and
-- copied to S3 (README.md); a query on them reads only the columns it uses.
--
-- Replace before running: the database name `maillog`, the bucket and prefixes
-- `s3://my-mail-archive/mail_logs/` (twice) and `s3://my-mail-archive/mirror/` (four times),
-- and the first date of each projection range.
-- Run the statements one at a time (Athena runs one per query).

CREATE DATABASE IF NOT EXISTS maillog;

CREATE EXTERNAL TABLE IF NOT EXISTS maillog.mail_records (
  -- Both kinds: the original pipeline's fields.
  `sendmailid`  string,
  `pid`         string,
  `month`       string,
  `day`         string,
  `time`        string,
  `mailserver`  string,
  `relay`       string,
  -- from records.
  `src`         string,
  `size`        string,
  `classnumber` string,
  `nrcpts`      string,
  `msgid`       string,
  -- to records.
  `dest`        string,
  `delay`       string,
  `xdelay`      string,
  `stat`        string,
  -- Added fields (CONTRACT.md): the event's RFC 3339 time, the relay's address, and every other
  -- key=value of the line under sendmail's own name. Add more with ALTER TABLE ADD COLUMNS.
  `ts`          string,
  `relay_ip`    string,
  `mailer`      string,
  `pri`         string,
  `dsn`         string,
  `proto`       string,
  `daemon`      string,
  `ctladdr`     string,
  `bodytype`    string,
  `auth`        string,
  `ntries`      string,
  `orcpt`       string,
  `quarantine`  string
)
PARTITIONED BY (`dt` string)
ROW FORMAT SERDE 'org.openx.data.jsonserde.JsonSerDe'
STORED AS
  INPUTFORMAT 'org.apache.hadoop.mapred.TextInputFormat'
  OUTPUTFORMAT 'org.apache.hadoop.hive.ql.io.HiveIgnoreKeyTextOutputFormat'
LOCATION 's3://my-mail-archive/mail_logs/'
TBLPROPERTIES (
  'projection.enabled' = 'true',
  'projection.dt.type' = 'date',
  'projection.dt.format' = 'yyyy-MM-dd',
  'projection.dt.range' = '2011-01-01,NOW',
  'projection.dt.interval' = '1',
  'projection.dt.interval.unit' = 'DAYS',
  'storage.location.template' = 's3://my-mail-archive/mail_logs/${dt}/'
);

-- from records (one per accepted message), with the keys of `maillog top`: src as a key (the
-- null sender as <>), src_domain, and bytes (size as a number; 0 when it is not one).
CREATE OR REPLACE VIEW maillog.mail_from AS
SELECT
  sendmailid, pid, "month", "day", "time", mailserver, src, "size", classnumber, nrcpts, msgid,
  relay, ts, relay_ip, proto, daemon, bodytype, auth, mailer, ctladdr, quarantine,
  CASE WHEN src = '' THEN '<>' ELSE src END AS src_key,
  lower(regexp_extract(src, '@([^@]+)$', 1)) AS src_domain,
  CASE WHEN regexp_like("size", '^[0-9]+$') THEN coalesce(try_cast("size" AS bigint), 0) ELSE 0 END
    AS bytes,
  dt,
  "$path" AS file
FROM maillog.mail_records
WHERE regexp_like("$path", '/from-[^/]*$');

-- to records (one per recipient), with the keys of `maillog top`: dest as a key (<> for an empty
-- one), dest_domain, and status (Sent, Deferred, Bounced by dsn; else Sent, Deferred, Queued or
-- Other by stat; NULL without either).
CREATE OR REPLACE VIEW maillog.mail_to AS
SELECT
  sendmailid, pid, "month", "day", "time", mailserver, dest, "delay", xdelay, mailer, pri,
  relay, relay_ip, dsn, stat, ctladdr, ntries, orcpt, ts,
  CASE WHEN dest = '' THEN '<>' ELSE dest END AS dest_key,
  lower(regexp_extract(dest, '@([^@]+)$', 1)) AS dest_domain,
  CASE
    WHEN substr(dsn, 1, 1) = '2' THEN 'Sent'
    WHEN substr(dsn, 1, 1) = '4' THEN 'Deferred'
    WHEN substr(dsn, 1, 1) = '5' THEN 'Bounced'
    WHEN stat LIKE 'Sent%' THEN 'Sent'
    WHEN stat LIKE 'Deferred%' THEN 'Deferred'
    WHEN lower(substr(stat, 1, 6)) = 'queued' THEN 'Queued'
    WHEN stat IS NOT NULL THEN 'Other'
  END AS status,
  dt,
  "$path" AS file
FROM maillog.mail_records
WHERE regexp_like("$path", '/to-[^/]*$');

-- The Parquet mirror (crates/mirror/SCHEMA.md): mirror/{kind}/dt=YYYY-MM-DD/*.parquet, one file
-- per kind per hour (and one per archive file that came after its hour was mirrored). The kinds
-- are in folders of their own, so a table per kind reads only its kind's files: no view, no
-- "$path". A string column is the record's field byte for byte (NULL: the record lacks it);
-- `other` holds every other key; the typed columns are derived from the strings (NULL where the
-- string is absent or not of that form). Columns are read by name.
CREATE EXTERNAL TABLE IF NOT EXISTS maillog.mirror_from (
  `kind`           string,
  `sendmailid`     string,
  `pid`            string,
  `month`          string,
  `day`            string,
  `time`           string,
  `mailserver`     string,
  `src`            string,
  `size`           string,
  `classnumber`    string,
  `nrcpts`         string,
  `msgid`          string,
  `relay`          string,
  `dest`           string,
  `delay`          string,
  `xdelay`         string,
  `stat`           string,
  `ts`             string,
  `relay_ip`       string,
  `mailer`         string,
  `pri`            string,
  `dsn`            string,
  `proto`          string,
  `daemon`         string,
  `ctladdr`        string,
  `other`          map<string,string>,
  -- `ts` as an instant (UTC), `size` as a number, `delay`/`xdelay` in seconds.
  `ts_utc`         timestamp,
  `size_bytes`     bigint,
  `delay_seconds`  bigint,
  `xdelay_seconds` bigint
)
PARTITIONED BY (`dt` string)
STORED AS PARQUET
LOCATION 's3://my-mail-archive/mirror/from/'
TBLPROPERTIES (
  'projection.enabled' = 'true',
  'projection.dt.type' = 'date',
  'projection.dt.format' = 'yyyy-MM-dd',
  'projection.dt.range' = '2011-01-01,NOW',
  'projection.dt.interval' = '1',
  'projection.dt.interval.unit' = 'DAYS',
  'storage.location.template' = 's3://my-mail-archive/mirror/from/dt=${dt}/'
);

-- The same columns over the to records' folder.
CREATE EXTERNAL TABLE IF NOT EXISTS maillog.mirror_to (
  `kind`           string,
  `sendmailid`     string,
  `pid`            string,
  `month`          string,
  `day`            string,
  `time`           string,
  `mailserver`     string,
  `src`            string,
  `size`           string,
  `classnumber`    string,
  `nrcpts`         string,
  `msgid`          string,
  `relay`          string,
  `dest`           string,
  `delay`          string,
  `xdelay`         string,
  `stat`           string,
  `ts`             string,
  `relay_ip`       string,
  `mailer`         string,
  `pri`            string,
  `dsn`            string,
  `proto`          string,
  `daemon`         string,
  `ctladdr`        string,
  `other`          map<string,string>,
  `ts_utc`         timestamp,
  `size_bytes`     bigint,
  `delay_seconds`  bigint,
  `xdelay_seconds` bigint
)
PARTITIONED BY (`dt` string)
STORED AS PARQUET
LOCATION 's3://my-mail-archive/mirror/to/'
TBLPROPERTIES (
  'projection.enabled' = 'true',
  'projection.dt.type' = 'date',
  'projection.dt.format' = 'yyyy-MM-dd',
  'projection.dt.range' = '2011-01-01,NOW',
  'projection.dt.interval' = '1',
  'projection.dt.interval.unit' = 'DAYS',
  'storage.location.template' = 's3://my-mail-archive/mirror/to/dt=${dt}/'
);
