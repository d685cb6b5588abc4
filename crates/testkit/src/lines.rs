//! Log lines for tests that need a few, each a record of its own.

/// `count` ISO-stamped `from` lines of 2025-11-20, from `first` on, ten seconds apart (every
/// window long due), each with its own queue id `q{i:08}`.
pub fn from_lines(first: usize, count: usize) -> String {
    (first..first + count)
        .map(|i| {
            format!(
                "2025-11-20T10:{:02}:{:02}+00:00 mail1 sendmail[{i}]: q{i:08}: from=<u{i}@example.com>, size={i}, class=0, nrcpts=1, relay=client.example.net [10.0.0.1]\n",
                i * 10 / 60,
                i * 10 % 60
            )
        })
        .collect()
}
