//! Fuzzes the dpkg database readers: any bytes as a package's `.list`, its `.md5sums` and the
//! `status` file (with `Conffiles:`), and as `/etc/passwd`. Nothing may panic; every path a
//! `.list` line gives is owned by the package afterwards.

#![no_main]

use libfuzzer_sys::fuzz_target;
use unithunt_hunt::dpkg::Dpkg;
use unithunt_hunt::hunt::parse_passwd;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let mut db = Dpkg::default();
    db.add_list("fuzz", &text);
    db.add_md5sums(&text);
    db.add_status(&text);
    for line in text.lines().filter(|l| l.starts_with('/')) {
        assert!(db.owners(line).iter().any(|p| p == "fuzz"), "{line:?}");
    }
    assert_eq!(db.is_empty(), !text.lines().any(|l| l.starts_with('/')));
    for a in parse_passwd(data) {
        assert!(!a.home.is_empty());
    }
});
