//! Fuzzes the RPM header reader: any bytes as a package header blob of an RPM database. Nothing
//! may panic, every file it gives is built from the blob's own strings, and a header read within
//! a small budget never gives more files or path bytes than the budget allows (the join of
//! directory names and base names is counted before it is built).

#![no_main]

use libfuzzer_sys::fuzz_target;
use unithunt_hunt::rpm::{parse_header, parse_header_within, HeaderBudget};

fuzz_target!(|data: &[u8]| {
    if let Ok(h) = parse_header(data) {
        for (path, _digest) in &h.files {
            assert!(path.len() < data.len() * 2 + 1);
        }
    }
    let mut budget = HeaderBudget {
        files: 4,
        path_bytes: 256,
        exhausted: None,
    };
    match parse_header_within(data, &mut budget) {
        Ok(h) => {
            assert!(h.files.len() <= 4);
            let bytes: usize = h.files.iter().map(|(p, _)| p.len()).sum();
            assert!(bytes <= 256, "{bytes} bytes of paths");
            assert_eq!(budget.files, 4 - h.files.len());
            assert!(budget.exhausted.is_none());
        }
        Err(e) => {
            if budget.exhausted.is_some() {
                assert!(e.contains("over the budget"), "{e}");
                // Nothing was spent on a refused header.
                assert_eq!((budget.files, budget.path_bytes), (4, 256));
            }
        }
    }
});
