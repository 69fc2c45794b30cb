//! Fuzzes every converted format end to end: the bytes go through the audit, LAUREL, Sysmon and
//! Defender (CSV and JSON) converters in two blocks, deferred formatting included. Nothing may
//! panic, and every line must be accounted for (a record of an event, or skipped).

#![no_main]

use libfuzzer_sys::fuzz_target;
use std::sync::Arc;
use unithunt_readers::auditd::AuditTranscoder;
use unithunt_readers::{defender, laurel, sysmon, BlockReader, Converter};

fuzz_target!(|data: &[u8]| {
    let converters = || {
        let mut deferred = AuditTranscoder::new();
        deferred.defer_format = true;
        [
            Converter::Auditd(Box::new(AuditTranscoder::new())),
            Converter::Auditd(Box::new(deferred)),
            Converter::Laurel(laurel::LaurelTranscoder::new()),
            Converter::Sysmon(sysmon::SysmonConverter::default()),
            Converter::Defender(defender::DefenderConverter::new(false)),
            Converter::Defender(defender::DefenderConverter::new(true)),
        ]
    };
    let lines = data.split(|&b| b == b'\n').count() as u64
        - u64::from(data.ends_with(b"\n") || data.is_empty());
    for mut c in converters() {
        let mut reader = BlockReader::from_reader("fuzz", Box::new(std::io::Cursor::new(data.to_vec())))
            .expect("reading memory");
        let mut seen = 0u64;
        let mut skipped = 0u64;
        loop {
            let (mut block, last) = match reader.next_block(64) {
                Ok(Some(b)) => (c.convert(b), false),
                _ => (c.finish_file(Arc::from("fuzz"), 0), true),
            };
            block.format_deferred();
            if let Some(conv) = &block.converted {
                seen += conv.lines;
                skipped += conv.skipped.len() as u64;
            }
            for line in block.data.split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
                let v: serde_json_check::Value = serde_json_check::from_slice(line).expect("ECS lines are JSON");
                assert!(v.is_object());
            }
            if last {
                break;
            }
        }
        assert!(skipped <= seen);
        // Compressed-looking input is decoded first: accounting is then of the decoded lines.
        if !data.starts_with(&[0x1f, 0x8b]) && !data.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
            assert_eq!(seen, lines, "every line accounted for");
        }
    }
});

mod serde_json_check {
    pub use serde_json::{from_slice, Value};
}
