//! placeholder until ingest lands
fn main() {}
