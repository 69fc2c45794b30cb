//! Fuzzes the Berkeley DB hash reader (RPM's `Packages` file of RHEL 7 and 8): any bytes as the
//! file. Nothing may panic; every value read lies within the file's size.

#![no_main]

use libfuzzer_sys::fuzz_target;
use unithunt_hunt::bdb::hash_values;

fuzz_target!(|data: &[u8]| {
    if let Ok((values, _problems)) = hash_values(data) {
        for v in values {
            assert!(v.len() <= data.len());
        }
    }
});
