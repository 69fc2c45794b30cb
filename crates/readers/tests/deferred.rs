//! Formatting audit events later, elsewhere (as multi-threaded scans do) gives exactly the bytes
//! formatting them at once gives: on the real recording, block by block, with and without raw
//! records.

use std::sync::Arc;
use unithunt_readers::auditd::AuditTranscoder;
use unithunt_readers::BlockReader;

fn convert(defer: bool, raw_records: bool, block_size: usize) -> (Vec<u8>, u64) {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/samples/auditd/dev-enriched.log");
    let mut reader = BlockReader::open_path(&path).expect("the shared recording");
    let mut t = AuditTranscoder::new();
    t.defer_format = defer;
    t.raw_records = raw_records;
    let mut out = Vec::new();
    let mut lines = 0;
    loop {
        let mut block = match reader.next_block(block_size).unwrap() {
            Some(b) => t.convert(b),
            None => t.finish_file(Arc::from("x"), 0),
        };
        let last = block.converted.as_ref().is_some_and(|c| c.lines == 0);
        lines += block.converted.as_ref().map_or(0, |c| c.lines);
        block.format_deferred();
        out.extend_from_slice(&block.data);
        if last {
            break;
        }
    }
    (out, lines)
}

#[test]
fn deferred_formatting_writes_the_same_events() {
    for raw in [false, true] {
        for size in [4096, 1 << 20] {
            let (now, lines_now) = convert(false, raw, size);
            let (later, lines_later) = convert(true, raw, size);
            assert_eq!(lines_now, 1397);
            assert_eq!(lines_later, lines_now);
            assert!(!now.is_empty());
            assert!(now == later, "raw records {raw}, block size {size}");
        }
    }
}
