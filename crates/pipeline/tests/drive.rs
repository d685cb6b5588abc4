//! The pipeline driven as a library, without the binary: settings built in code, a one-shot
//! backfill of a small log into a local archive, and the archive holding one record per line.
#![allow(clippy::unwrap_used)]

use std::io::Read;
use std::path::Path;

use maillog_archive::ArchiveUrl;
use maillog_pipeline::{Service, Settings, Signals, run};

/// Every record line of every archived file.
fn archived_records(archive: &Path) -> usize {
    let mut records = 0;
    for day in std::fs::read_dir(archive.join("mail_logs")).unwrap() {
        for file in std::fs::read_dir(day.unwrap().path()).unwrap() {
            let bytes = std::fs::read(file.unwrap().path()).unwrap();
            let mut text = String::new();
            bzip2::read::MultiBzDecoder::new(&bytes[..])
                .read_to_string(&mut text)
                .unwrap();
            records += text.lines().count();
        }
    }
    records
}

#[test]
fn a_backfill_driven_in_code_archives_every_record_once() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("mail.log");
    std::fs::write(&input, maillog_testkit::lines::from_lines(0, 60)).unwrap();
    let archive = dir.path().join("archive");
    let mut settings = Settings::new(
        vec![input],
        dir.path().join("spool"),
        ArchiveUrl::Local(archive.clone()),
    );
    settings.once = true;
    settings.seal_all = true;
    settings.batch.level = 1;
    let service = Service {
        signals: Signals::install().unwrap(),
        log: None,
        reread: None,
    };
    let summary = run(settings.clone(), service).unwrap().to_string();
    assert!(summary.contains("60 from records"), "{summary}");
    assert_eq!(archived_records(&archive), 60);
    // Run again: nothing new, nothing twice.
    let service = Service {
        signals: Signals::install().unwrap(),
        log: None,
        reread: None,
    };
    run(settings, service).unwrap();
    assert_eq!(archived_records(&archive), 60);
}
