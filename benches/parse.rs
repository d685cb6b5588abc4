//! Parser benchmarks (written below).
fn main() {}
