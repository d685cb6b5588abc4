//! Golden tests: one line of every form `CONTRACT.md` names, and the exact records it makes.

// A test that cannot read its fixture should fail loudly: unwrap is the point here.
#![allow(clippy::unwrap_used)]

use maillog_parse::{FieldsMode, NonRecord, Parsed, Parser, TimeContext, YearPolicy, Zone, decode};
use serde_json::{Value, json};

fn parser() -> Parser {
    Parser::new(TimeContext::new(Zone::Utc, YearPolicy::Fixed(2025)), &[])
}

/// The records `parser` makes of `line`, as JSON values (in order).
fn records_with(parser: &Parser, line: &str, mode: FieldsMode) -> Vec<Value> {
    let decoded = decode(line.as_bytes());
    match parser.parse(&decoded.text) {
        Parsed::Event(event) => event
            .records()
            .map(|r| serde_json::from_str(&r.to_json(mode)).unwrap())
            .collect(),
        Parsed::NonRecord(_) => Vec::new(),
    }
}

fn records(line: &str) -> Vec<Value> {
    records_with(&parser(), line, FieldsMode::All)
}

fn only_record(line: &str) -> Value {
    let mut all = records(line);
    assert_eq!(all.len(), 1, "{line}: {all:?}");
    all.remove(0)
}

fn class(line: &str) -> Option<NonRecord> {
    match parser().parse(&decode(line.as_bytes()).text) {
        Parsed::Event(_) => None,
        Parsed::NonRecord(class) => Some(class),
    }
}

#[test]
fn contract_from_example() {
    let line = "Jul 12 20:53:00 mail5 sendmail[6229]: p6D0r0u1006229: from=<info@example.com>, size=57395, class=0, nrcpts=1, msgid=<WARQZCXAEMSSVWPPOOYZXRLQIKMFUY.155763@example.com>, proto=ESMTP, daemon=MTA, relay=app03.example.com [10.1.2.3]";
    let expected = r#"{"sendmailid":"p6D0r0u1006229","pid":"6229","month":"Jul","day":"12","time":"20:53:00","mailserver":"mail5","src":"info@example.com","size":"57395","classnumber":"0","nrcpts":"1","msgid":"WARQZCXAEMSSVWPPOOYZXRLQIKMFUY.155763@example.com","relay":"app03.example.com","ts":"2025-07-12T20:53:00+00:00","relay_ip":"10.1.2.3","proto":"ESMTP","daemon":"MTA"}"#;
    // Byte for byte: key order is part of the deterministic output.
    let Parsed::Event(event) = parser().parse(line) else {
        panic!("no record")
    };
    let record = event.records().next().unwrap();
    assert_eq!(record.to_json(FieldsMode::All), expected);
    let original = r#"{"sendmailid":"p6D0r0u1006229","pid":"6229","month":"Jul","day":"12","time":"20:53:00","mailserver":"mail5","src":"info@example.com","size":"57395","classnumber":"0","nrcpts":"1","msgid":"WARQZCXAEMSSVWPPOOYZXRLQIKMFUY.155763@example.com","relay":"app03.example.com"}"#;
    assert_eq!(record.to_json(FieldsMode::Original), original);
    let mut with_kind = Vec::new();
    record.write_json_with_kind(FieldsMode::Original, &mut with_kind);
    assert!(with_kind.starts_with(br#"{"kind":"from","sendmailid""#));
}

#[test]
fn contract_to_example_keeps_the_relay_dot_and_the_whole_stat() {
    let line = "Jul 12 20:53:00 mail2 sendmail[6406]: p6D0qwvm006395: to=<somebody@gmail.com>, delay=00:00:02, xdelay=00:00:02, mailer=esmtp, pri=120395, relay=gmail-smtp-in.l.google.com. [74.125.1.2], dsn=2.0.0, stat=Sent (OK 1310518380 pd12si6025606vcb.162)";
    assert_eq!(
        only_record(line),
        json!({"sendmailid":"p6D0qwvm006395","pid":"6406","month":"Jul","day":"12","time":"20:53:00",
               "mailserver":"mail2","dest":"somebody@gmail.com","delay":"00:00:02","xdelay":"00:00:02",
               "stat":"Sent (OK 1310518380 pd12si6025606vcb.162)","relay":"gmail-smtp-in.l.google.com.",
               "ts":"2025-07-12T20:53:00+00:00","relay_ip":"74.125.1.2","mailer":"esmtp","pri":"120395","dsn":"2.0.0"})
    );
}

#[test]
fn one_to_record_per_recipient_in_the_order_logged() {
    let line = "Jul 21 09:23:37 kibr sm-mta[31431]: 06L6NSXb031429: to=<v.pavlushyn@s1.ua>,<s.fitel@s1.ua>,<s.danilyuk@s1.ua>,<a.bahmach@s1.ua>, delay=00:00:04, xdelay=00:00:03, mailer=esmtp, pri=2427490, relay=aspmx.l.google.com. [173.194.73.26], dsn=2.0.0, stat=Sent (OK  1595312617 a15si12302346lji.530 - gsmtp)";
    let all = records(line);
    let dests: Vec<&str> = all.iter().map(|r| r["dest"].as_str().unwrap()).collect();
    assert_eq!(
        dests,
        [
            "v.pavlushyn@s1.ua",
            "s.fitel@s1.ua",
            "s.danilyuk@s1.ua",
            "a.bahmach@s1.ua"
        ]
    );
    for record in &all {
        assert_eq!(
            record["stat"],
            "Sent (OK  1595312617 a15si12302346lji.530 - gsmtp)"
        );
        assert_eq!(record["sendmailid"], "06L6NSXb031429");
    }
    // A cut list: sendmail's `[more]` marker is not a recipient.
    let cut = "Jul 21 09:23:37 h sm-mta[1]: 06L6NSXb031429: to=<a@x>,<b@x>,[more], delay=00:00:04, stat=Sent";
    assert_eq!(records(cut).len(), 2);
}

#[test]
fn null_sender_bare_sender_and_local_relay() {
    let null = only_record(
        "Jul 19 04:40:09 kibr sm-mta[1]: 06J1e42n012713: from=<>, size=3, class=0, nrcpts=1, msgid=<x@y>, proto=ESMTP, daemon=MTA, relay=localhost [127.0.0.1]",
    );
    assert_eq!(null["src"], "");
    let bare = only_record(
        "Jul 19 04:42:33 kibr sendmail[12768]: 06J1gXwY012768: from=root, size=654, class=0, nrcpts=1, msgid=<202007190142.06J1gXwY012768@mail.kibr.net>, relay=root@localhost",
    );
    assert_eq!(
        (bare["src"].as_str(), bare["relay"].as_str()),
        (Some("root"), Some("root@localhost"))
    );
    assert!(bare.get("relay_ip").is_none());
}

#[test]
fn quoted_addresses_with_commas_stay_whole() {
    let from = only_record(
        r#"Jul 12 20:53:00 h sendmail[1]: p6D0r0u1006229: from=<"o'neil, jr"@example.com>, size=1, class=0, nrcpts=2"#,
    );
    assert_eq!(from["src"], r#""o'neil, jr"@example.com"#);
    assert_eq!(from["size"], "1");
    let to = records(
        r#"Jul 12 20:53:00 h sendmail[1]: p6D0r0u1006229: to=<"a, b"@x.org>,<c@x.org>, delay=00:00:01, stat=Sent"#,
    );
    let dests: Vec<&str> = to.iter().map(|r| r["dest"].as_str().unwrap()).collect();
    assert_eq!(dests, [r#""a, b"@x.org"#, "c@x.org"]);
}

#[test]
fn stat_runs_to_the_end_of_the_line_as_logged() {
    let line = "May 20 08:37:09 mailhost sendmail[28159]: j4KDb5SW028159: to=<someone@example.com>, delay=00:00:04, xdelay=00:00:04, mailer=esmtp, pri=36080, relay=mta.example.com. [61.140.xxx.yyy], dsn=2.0.0, stat=Sent (Requested mail action okay, completed.  Message-ID=<a, b=c>)  ";
    let record = only_record(line);
    assert_eq!(
        record["stat"],
        "Sent (Requested mail action okay, completed.  Message-ID=<a, b=c>)  "
    );
    assert_eq!(record["relay_ip"], "61.140.xxx.yyy");
    // The unspaced separator before one of sendmail's keys.
    let record = only_record(
        "Jul 12 20:53:00 h sendmail[1]: p6D0r0u1006229: to=<a@b>, delay=00:00:00, dsn=5.0.0,stat=Service unavailable",
    );
    assert_eq!(
        (record["dsn"].as_str(), record["stat"].as_str()),
        (Some("5.0.0"), Some("Service unavailable"))
    );
}

#[test]
fn relay_shapes() {
    let relay = |value: &str| {
        let r = only_record(&format!(
            "Jul 12 20:53:00 h sm-mta[1]: p6D0r0u1006229: to=<a@b>, relay={value}, stat=Sent"
        ));
        (
            r["relay"].as_str().map(str::to_owned),
            r.get("relay_ip").and_then(Value::as_str).map(str::to_owned),
        )
    };
    let some = |s: &str| Some(s.to_owned());
    assert_eq!(
        relay("[127.0.0.1] [127.0.0.1]"),
        (some("127.0.0.1"), some("127.0.0.1"))
    );
    assert_eq!(relay("[192.0.2.5]"), (some("192.0.2.5"), some("192.0.2.5")));
    assert_eq!(relay("[IPv6:::1]"), (some("IPv6:::1"), some("IPv6:::1")));
    assert_eq!(
        relay("abcd.example.net. [IPv6:2a02:cf40::]"),
        (some("abcd.example.net."), some("IPv6:2a02:cf40::"))
    );
    assert_eq!(
        relay("fowl.cosmosnob.com [89.33.192.102] (may be forged)"),
        (some("fowl.cosmosnob.com"), some("89.33.192.102"))
    );
    assert_eq!(
        relay("mta6.am0.yahoodns.net."),
        (some("mta6.am0.yahoodns.net."), None)
    );
    assert_eq!(relay("local"), (some("local"), None));
    assert_eq!(relay("#7#@localhost"), (some("#7#@localhost"), None));
    assert_eq!(
        relay("host [123.456.789.1]"),
        (some("host"), some("123.456.789.1"))
    );
}

#[test]
fn ctladdr_delay_with_days_and_other_keys_are_added_under_their_names() {
    let record = only_record(
        "Apr  3 00:15:40 mta001 sendmail[12566]: u31FFPtp032300: to=root, ctladdr=root (0/0), delay=1+00:00:15, xdelay=00:00:15, mailer=local, pri=34527, dsn=4.3.5, stat=Deferred: 451 4.3.5 Server configuration problem",
    );
    assert_eq!(record["ctladdr"], "root (0/0)");
    assert_eq!(record["delay"], "1+00:00:15");
    assert_eq!(record["mailer"], "local");
    assert_eq!(record["day"], "3");
    assert!(
        record.get("relay").is_none(),
        "a field the line does not carry is left out"
    );
}

#[test]
fn repeated_key_last_wins_and_empty_values_are_left_out() {
    let record = only_record(
        "Jul 12 20:53:00 h sm-mta[1]: p6D0r0u1006229: from=<a@b>, size=1, msgid=, user=x, relay=[192.0.2.100], relay=[192.0.2.4] (may be forged), user=y, proto=",
    );
    assert_eq!(record["relay"], "192.0.2.4");
    assert_eq!(record["user"], "y");
    assert!(record.get("msgid").is_none() && record.get("proto").is_none());
}

#[test]
fn added_fields_never_repeat_or_shadow_record_keys() {
    let record = only_record(
        "Jul 12 20:53:00 h sm-mta[1]: p6D0r0u1006229: to=<a@b>, from=<x@y>, size=5, day=9, ts=x, kind=y, stat=Sent",
    );
    let keys: Vec<&String> = record.as_object().unwrap().keys().collect();
    for forbidden in ["from", "size", "kind"] {
        assert!(
            !keys.iter().any(|k| k.as_str() == forbidden),
            "{forbidden} in {keys:?}"
        );
    }
    assert_eq!(record["day"], "12");
    assert_eq!(record["ts"], "2025-07-12T20:53:00+00:00");
}

#[test]
fn header_tolerances() {
    let base = "p6D0r0u1006229: from=<a@b>, size=1";
    for (line, host, pid) in [
        (
            format!("Jun  4 12:25:26 mail sendmail[21691]: {base}"),
            Some("mail"),
            Some("21691"),
        ),
        (
            format!("Jun 4 12:25:26 mail sendmail[21691]: {base}"),
            Some("mail"),
            Some("21691"),
        ),
        (
            format!("Jun 04 12:25:26 mail sendmail[21691]: {base}"),
            Some("mail"),
            Some("21691"),
        ),
        (
            format!("   Jun  4 12:25:26 mail sendmail[21691]: {base}"),
            Some("mail"),
            Some("21691"),
        ),
        (
            format!("Jun  4 12:25:26 mail sendmail: {base}"),
            Some("mail"),
            None,
        ),
        (
            format!("Jun 17 14:37:39 <mail.notice> robin sm-mta[2794]: {base}"),
            Some("robin"),
            Some("2794"),
        ),
        (
            format!("Dec 12 00:00:02 machinename sendmail[20512]: [ID 801593 mail.info] {base}"),
            Some("machinename"),
            Some("20512"),
        ),
        (
            format!("Jun  4 12:25:26 mail sm-msp-queue[1]: {base}\r\n"),
            Some("mail"),
            Some("1"),
        ),
    ] {
        let record = only_record(&line);
        assert_eq!(record["mailserver"].as_str(), host, "{line}");
        assert_eq!(record.get("pid").and_then(Value::as_str), pid, "{line}");
        assert_eq!(record["size"], "1", "{line}");
    }
}

#[test]
fn iso_and_rfc5424_headers() {
    let iso = only_record(
        "2024-06-19T05:25:41.855197-07:00 m0000123 sendmail[17965]: 27PNO8ta032355: to=REDACTED, delay=00:00:00, stat=Sent",
    );
    assert_eq!(
        (
            iso["month"].as_str(),
            iso["day"].as_str(),
            iso["time"].as_str()
        ),
        (Some("Jun"), Some("19"), Some("05:25:41"))
    );
    assert_eq!(iso["ts"], "2024-06-19T05:25:41.855197-07:00");
    let berlin = Parser::new(
        TimeContext::new("Europe/Berlin".parse().unwrap(), YearPolicy::Fixed(2025)),
        &[],
    );
    let local = records_with(
        &berlin,
        "2024-01-19T05:25:41 h sendmail[1]: 27PNO8ta032355: to=x, stat=Sent",
        FieldsMode::All,
    );
    assert_eq!(local[0]["ts"], "2024-01-19T05:25:41+01:00");

    let rfc = only_record(
        r#"<22>1 2024-03-01T10:00:00.5Z mx1 sm-mta 4711 - [meta sequenceId="1"] 27PNO8ta032355: from=<a@b>, size=9"#,
    );
    assert_eq!(
        (
            rfc["mailserver"].as_str(),
            rfc["pid"].as_str(),
            rfc["time"].as_str()
        ),
        (Some("mx1"), Some("4711"), Some("10:00:00"))
    );
    assert_eq!(rfc["ts"], "2024-03-01T10:00:00.5Z");
    let nil = only_record("<22>1 2024-03-01T10:00:00Z - sm-mta - - - 27PNO8ta032355: from=<a@b>");
    assert!(nil.get("mailserver").is_none() && nil.get("pid").is_none());
    assert_eq!(
        class("<22>1 - mx1 sm-mta 1 - - 27PNO8ta032355: from=<a@b>"),
        Some(NonRecord::Unparseable)
    );
}

#[test]
fn queue_ids_of_eight_to_twenty_characters() {
    for id in [
        "kBC50252",
        "kBC502520512",
        "k1SN9pkK15806618",
        "ABCDEFGHIJ0123456789",
    ] {
        let record = only_record(&format!("Jul 12 20:53:00 h sendmail[1]: {id}: from=<a@b>"));
        assert_eq!(record["sendmailid"], id);
    }
    for id in ["kBC5025", "ABCDEFGHIJ01234567890", "NOQUEUE"] {
        assert_eq!(
            class(&format!("Jul 12 20:53:00 h sendmail[1]: {id}: from=<a@b>")),
            Some(NonRecord::SendmailOther),
            "{id}"
        );
    }
}

#[test]
fn non_record_lines_are_classified() {
    use NonRecord::*;
    for (line, expected) in [
        (
            "Jul 12 20:53:00 h postfix/qmgr[77]: 4F2A31C0B2: from=<a@b>, size=1, nrcpt=1 (queue active)",
            OtherProgram,
        ),
        (
            "Jul 12 20:53:00 h CRON[77]: (root) CMD (run-parts /etc/cron.hourly)",
            OtherProgram,
        ),
        (
            "Jul 12 20:53:00 h kernel: [1.5] TCP: Possible SYN flooding",
            OtherProgram,
        ),
        (
            "Jul 12 20:53:00 h sm-mta[1]: 06K86Uji022306: ruleset=check_rcpt, arg1=<x@y>, relay=h [1.2.3.4], reject=550 5.7.1 <x@y>... Relaying denied",
            SendmailOther,
        ),
        (
            "Jul 12 20:53:00 h sm-mta[1]: STARTTLS=client, relay=x., version=TLSv1.3, verify=FAIL, cipher=X, bits=256/256",
            SendmailOther,
        ),
        (
            "Jul 12 20:53:00 h sendmail[1]: u31FFPtp032300: Milter: to=<a@b>, reject=550 5.7.1 Blocked",
            SendmailOther,
        ),
        (
            "Jul 12 20:53:00 h sendmail[1]: j4K970hV028494: j4K975hV028499: DSN: Service unavailable",
            SendmailOther,
        ),
        (
            "Jul 12 20:53:00 h sendmail[1]: u31FFPtp032300: to=, delay=00:00:00",
            SendmailOther,
        ),
        (
            "May 20 08:37:32 mailhost sendmail[7215]: j4KDbUaV007215[2]: \\263\\273 clknwtmpxu",
            Continuation,
        ),
        (
            "  tls_verify=NONE, tls_version=NONE, cipher=NONE",
            Continuation,
        ),
        (
            "sm-mta[20900]: k4PK8NYf020900: from=<a@b>, size=1",
            Unparseable,
        ),
        (
            "- 1131566491 2005.11.09 eadmin1 Nov 9 12:01:31 src@eadmin1 sendmail[4306]: k4PK8NYf020900: from=root",
            Unparseable,
        ),
        ("", Unparseable),
        ("\u{0}\u{1}garbage", Unparseable),
        (
            "Feb 30 12:00:00 h sendmail[1]: k4PK8NYf020900: from=<a@b>",
            Unparseable,
        ),
    ] {
        assert_eq!(class(line), Some(expected), "{line}");
    }
}

#[test]
fn configured_program_names_are_sendmail_too() {
    let line = "Jul 12 20:53:00 h queued-ser[1]: k4PK8NYf020900: from=<a@b>, size=1";
    assert_eq!(class(line), Some(NonRecord::OtherProgram));
    let parser = Parser::new(
        TimeContext::new(Zone::Utc, YearPolicy::Fixed(2025)),
        &["queued-ser".to_owned()],
    );
    assert_eq!(records_with(&parser, line, FieldsMode::All).len(), 1);
}

#[test]
fn invalid_utf8_is_replaced_never_lost() {
    let line =
        b"Jul 12 20:53:00 h sendmail[1]: k4PK8NYf020900: from=<caf\xe9@example.com>, size=1\n";
    let decoded = decode(line);
    assert!(decoded.lossy);
    let Parsed::Event(event) = parser().parse(&decoded.text) else {
        panic!("no record")
    };
    let record: Value =
        serde_json::from_str(&event.records().next().unwrap().to_json(FieldsMode::All)).unwrap();
    assert_eq!(record["src"], "caf\u{fffd}@example.com");
}

#[test]
fn lines_of_any_length() {
    let recipients: Vec<String> = (0..20_000)
        .map(|i| format!("<user{i}@example.org>"))
        .collect();
    let line = format!(
        "Jul 12 20:53:00 h sendmail[1]: k4PK8NYf020900: to={}, delay=00:00:01, stat=Sent",
        recipients.join(",")
    );
    let all = records(&line);
    assert_eq!(all.len(), 20_000);
    assert_eq!(all[19_999]["dest"], "user19999@example.org");
    let stat = "x".repeat(1 << 20);
    let line = format!(
        "Jul 12 20:53:00 h sendmail[1]: k4PK8NYf020900: to=<a@b>, delay=00:00:01, stat=Sent ({stat})"
    );
    assert_eq!(
        only_record(&line)["stat"].as_str().unwrap().len(),
        stat.len() + 7
    );
}

#[test]
fn values_that_need_json_escaping() {
    let record = only_record(
        "Jul 12 20:53:00 h sendmail[1]: k4PK8NYf020900: to=<\"q\\\"x\"@b>, stat=Sent (a\tb \"c\" \\d)",
    );
    assert_eq!(record["stat"], "Sent (a\tb \"c\" \\d)");
    assert_eq!(record["dest"], "\"q\\\"x\"@b");
}

#[test]
fn year_inference_across_a_year_end() {
    let reference = chrono::DateTime::parse_from_rfc3339("2026-01-01T00:30:00Z")
        .unwrap()
        .to_utc();
    let parser = Parser::new(
        TimeContext::new(Zone::Utc, YearPolicy::Reference(reference)),
        &[],
    );
    let ts = |line: &str| {
        records_with(&parser, line, FieldsMode::All)[0]["ts"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    assert_eq!(
        ts("Dec 31 23:59:59 h sendmail[1]: k4PK8NYf020900: from=<a@b>"),
        "2025-12-31T23:59:59+00:00"
    );
    assert_eq!(
        ts("Jan  1 00:00:01 h sendmail[1]: k4PK8NYf020900: from=<a@b>"),
        "2026-01-01T00:00:01+00:00"
    );
}
