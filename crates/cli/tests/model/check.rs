//! What the model checks: the archive never changes an object it has shown (after every step),
//! and, after the final drain, its records equal `maillog parse` of every complete line
//! written — as a multiset of `"{kind} {json}"`, each line parsed in the zone maillog read it
//! in.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fs::File;
use std::hash::{DefaultHasher, Hasher};
use std::io::Read;
use std::path::{Path, PathBuf};

use maillog_testkit::records::multiset;

use super::lines::Zone;

/// Every object under `root` by key (its path below `root`), skipping the temporary files a
/// writer may hold there (names starting with a dot).
pub fn objects(root: &Path) -> BTreeMap<String, PathBuf> {
    let mut out = BTreeMap::new();
    let mut stack = vec![root.to_owned()];
    while let Some(dir) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries {
            let path = entry.unwrap().path();
            let name = path.file_name().unwrap().to_string_lossy();
            if name.starts_with('.') {
                continue;
            }
            if path.is_dir() {
                stack.push(path);
            } else {
                let key = path
                    .strip_prefix(root)
                    .unwrap()
                    .to_string_lossy()
                    .into_owned();
                out.insert(key, path);
            }
        }
    }
    out
}

/// [`objects`] but the columnar mirror's (`mirror/…`): the archive's window files.
pub fn window_objects(root: &Path) -> BTreeMap<String, PathBuf> {
    let mut all = objects(root);
    all.retain(|key, _| !key.starts_with("mirror/"));
    all
}

/// The hash of every file under `root` by its path below it (dot files too: nothing there may
/// change).
pub fn hashes(root: &Path) -> BTreeMap<String, Option<u64>> {
    let mut out = BTreeMap::new();
    for entry in walkdir(root) {
        let key = entry
            .strip_prefix(root)
            .unwrap()
            .to_string_lossy()
            .into_owned();
        out.insert(key, hash(&entry));
    }
    out
}

fn walkdir(root: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    let mut stack = vec![root.to_owned()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).into_iter().flatten() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path.clone());
            }
            files.push(path);
        }
    }
    files
}

fn hash(path: &Path) -> Option<u64> {
    let bytes = std::fs::read(path).ok()?;
    let mut h = DefaultHasher::new();
    h.write(&bytes);
    Some(h.finish() ^ bytes.len() as u64)
}

/// The hash of every object once seen: a key once seen keeps its bytes, and stays.
#[derive(Default)]
pub struct Snapshots(BTreeMap<String, u64>);

impl Snapshots {
    /// Compares the archive now with every earlier look; `Err` names what changed.
    pub fn look(&mut self, root: &Path) -> Result<(), String> {
        let now = objects(root);
        for (key, old) in &self.0 {
            match now.get(key).map(|p| hash(p)) {
                None | Some(None) => return Err(format!("archived object {key} disappeared")),
                Some(Some(h)) if h != *old => {
                    return Err(format!("archived object {key} changed its bytes"));
                }
                Some(Some(_)) => {}
            }
        }
        for (key, path) in now {
            if let Some(h) = hash(&path) {
                self.0.entry(key).or_insert(h);
            }
        }
        Ok(())
    }

    /// How many objects were seen.
    pub fn len(&self) -> usize {
        self.0.len()
    }
}

/// The records of every window file under `root` as `"{kind} {json}"`; any other file left
/// there (not a dot file) is an error.
pub fn archived(root: &Path) -> Result<HashMap<String, usize>, String> {
    let mut lines = Vec::new();
    for (key, path) in window_objects(root) {
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let Some(kind) = ["from", "to"]
            .into_iter()
            .find(|k| name.starts_with(&format!("{k}-")) && name.ends_with(".json.bz2"))
        else {
            return Err(format!("left in the archive, not a window file: {key}"));
        };
        let mut text = String::new();
        bzip2::read::MultiBzDecoder::new(File::open(&path).unwrap())
            .read_to_string(&mut text)
            .map_err(|e| format!("{key}: not bzip2 of UTF-8: {e}"))?;
        lines.extend(text.lines().map(|l| format!("{kind} {l}")));
    }
    Ok(multiset(lines))
}

/// `maillog parse --tz ZONE [--year YEAR]` of `log`, as `"{kind} {json}"`.
pub fn parsed(log: &Path, zone: &str, year: Option<i32>) -> HashMap<String, usize> {
    let year = year.map(|y| y.to_string());
    let mut args = vec!["--tz", zone];
    if let Some(year) = &year {
        args.extend(["--year", year.as_str()]);
    }
    crate::common::parsed_records_with(log, &args)
}

/// What the archive must hold: `maillog parse` of `truth` (written into `dir`), each line in
/// the zone it was read in (`zones_of`; `fallback` for a line never read). A line that may have
/// been read in several zones (a process read it, was killed, and the config changed before
/// the next run) is expected in whichever of them its records are archived in: records are
/// matched to lines by their queue id, unique to a line.
pub fn expected<'a>(
    dir: &Path,
    truth: &[String],
    zones_of: impl Fn(&str) -> &'a [Zone],
    fallback: Zone,
    year: Option<i32>,
    archived: &HashMap<String, usize>,
) -> HashMap<String, usize> {
    // The lines read in one zone, and the lines each zone may have read.
    let mut sure: BTreeMap<Zone, String> = BTreeMap::new();
    let mut maybe: BTreeMap<Zone, String> = BTreeMap::new();
    for line in truth {
        let zones = match zones_of(line) {
            [] => &[fallback][..],
            zones => zones,
        };
        let into = if zones.len() == 1 {
            &mut sure
        } else {
            &mut maybe
        };
        for zone in zones {
            into.entry(*zone)
                .or_default()
                .push_str(&format!("{line}\n"));
        }
    }
    let parse = |name: &str, zone: Zone, text: &str| {
        let path = dir.join(name);
        std::fs::write(&path, text).unwrap();
        parsed(&path, zone.name(), year)
    };
    let mut expected = HashMap::new();
    for (i, (zone, text)) in sure.iter().enumerate() {
        for (record, n) in parse(&format!("truth-{i}.log"), *zone, text) {
            *expected.entry(record).or_insert(0) += n;
        }
    }
    // Each undecided line's records, per zone, by queue id.
    let mut options: BTreeMap<String, Vec<Vec<String>>> = BTreeMap::new();
    for (i, (zone, text)) in maybe.iter().enumerate() {
        let mut by_qid: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for (record, n) in parse(&format!("undecided-{i}.log"), *zone, text) {
            let json = record.split_once(' ').unwrap().1;
            let value: serde_json::Value = serde_json::from_str(json).unwrap();
            let qid = value["sendmailid"].as_str().unwrap().to_owned();
            by_qid.entry(qid).or_default().extend(vec![record; n]);
        }
        for (qid, records) in by_qid {
            options.entry(qid).or_default().push(records);
        }
    }
    let mut left = archived.clone();
    for (record, n) in &expected {
        if let Some(have) = left.get_mut(record) {
            *have = have.saturating_sub(*n);
        }
    }
    for choices in options.into_values() {
        let fits = |records: &Vec<String>| {
            multiset(records.iter().cloned())
                .iter()
                .all(|(r, n)| left.get(r).is_some_and(|have| have >= n))
        };
        let chosen = choices.iter().find(|c| fits(c)).unwrap_or(&choices[0]);
        for record in chosen {
            if let Some(have) = left.get_mut(record) {
                *have = have.saturating_sub(1);
            }
            *expected.entry(record.clone()).or_insert(0) += 1;
        }
    }
    expected
}

/// What `expected` has that `archived` lacks (lost), and the reverse (extra), with a few
/// examples of each.
pub fn compare(
    expected: &HashMap<String, usize>,
    archived: &HashMap<String, usize>,
) -> (usize, usize, String) {
    let mut lost = 0;
    let mut extra = 0;
    let mut examples = String::new();
    for (record, n) in expected {
        let missing = n.saturating_sub(*archived.get(record).unwrap_or(&0));
        if missing > 0 && lost < 3 {
            examples.push_str(&format!("\n  lost {missing}×: {}", short(record)));
        }
        lost += missing;
    }
    for (record, n) in archived {
        let more = n.saturating_sub(*expected.get(record).unwrap_or(&0));
        if more > 0 && extra < 3 {
            examples.push_str(&format!("\n  extra {more}×: {}", short(record)));
        }
        extra += more;
    }
    (lost, extra, examples)
}

fn short(record: &str) -> String {
    let head: String = record.chars().take(160).collect();
    if head.len() < record.len() {
        format!("{head}… ({} bytes)", record.len())
    } else {
        head
    }
}

/// The queue ids of the records in the archive now; objects that cannot be read whole yet
/// (an upload in progress) are left out.
pub fn archived_qids(root: &Path) -> HashSet<String> {
    let mut qids = HashSet::new();
    for path in window_objects(root).into_values() {
        let mut text = String::new();
        let Ok(file) = File::open(&path) else {
            continue;
        };
        if bzip2::read::MultiBzDecoder::new(file)
            .read_to_string(&mut text)
            .is_err()
        {
            continue;
        }
        for line in text.lines() {
            if let Ok(record) = serde_json::from_str::<serde_json::Value>(line)
                && let Some(qid) = record["sendmailid"].as_str()
            {
                qids.insert(qid.to_owned());
            }
        }
    }
    qids
}

/// Every object holds one window: the `ts` of all its records fall in one 5-minute interval
/// (the zones of the model have whole-hour offsets, so local windows are UTC ones), and its
/// name is that interval's start in one of `zones` (those ever in force). Two windows under
/// one name — the repeated hour of a fall-back — break it.
pub fn one_window_per_object(root: &Path, zones: &[Zone]) -> Result<(), String> {
    for (key, path) in window_objects(root) {
        let mut text = String::new();
        bzip2::read::MultiBzDecoder::new(File::open(&path).unwrap())
            .read_to_string(&mut text)
            .map_err(|e| format!("{key}: {e}"))?;
        let mut first: Option<(i64, String)> = None;
        for line in text.lines() {
            let record: serde_json::Value =
                serde_json::from_str(line).map_err(|e| format!("{key}: {e}: {line}"))?;
            let ts = record["ts"].as_str().unwrap_or_default().to_owned();
            let Ok(at) = chrono::DateTime::parse_from_rfc3339(&ts) else {
                return Err(format!("{key}: a record without a valid ts: {line}"));
            };
            let window = at.timestamp().div_euclid(300);
            match &first {
                None => first = Some((window, ts)),
                Some((w, other)) if *w != window => {
                    return Err(format!(
                        "{key} holds records of two windows: ts {other} and ts {ts}"
                    ));
                }
                Some(_) => {}
            }
        }
        let Some((window, _)) = first else { continue };
        let start = window * 300;
        let name = path.file_name().unwrap().to_string_lossy();
        let stamp = name.split_once('-').and_then(|(_, s)| s.get(..16));
        let named = |zone: &Zone| {
            let local = chrono::DateTime::from_timestamp(start + i64::from(zone.offset(start)), 0);
            local.map(|l| l.format("%Y-%m-%d-%H-%M").to_string()) == stamp.map(str::to_owned)
        };
        if !zones.iter().any(named) {
            return Err(format!(
                "{key}: its records' window starts at {}, which it is not named by in any zone \
                 in force ({:?})",
                chrono::DateTime::from_timestamp(start, 0).unwrap(),
                zones.iter().map(|z| z.name()).collect::<Vec<_>>()
            ));
        }
    }
    Ok(())
}
