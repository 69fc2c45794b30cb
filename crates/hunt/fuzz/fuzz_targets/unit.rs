//! Fuzzes the unit file reader: any bytes, read as systemd would read a unit file, then every
//! value split as an `Exec*=` command line and expanded for specifiers. Nothing may panic, every
//! entry's line must lie in the file, and a refused file must say why.

#![no_main]

use libfuzzer_sys::fuzz_target;
use unithunt_hunt::unit::{expand_specifiers, parse, parse_exec, Specifiers, Unit};

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let lines = text.split('\n').count();
    let f = parse(&text);
    assert!(!f.refused || !f.problems.is_empty());
    for e in &f.entries {
        assert!(e.line >= 1 && e.line <= lines, "line {} of {lines}", e.line);
        assert!(!e.key.is_empty());
    }
    let spec = Specifiers {
        unit: "fuzz@a-b.service".into(),
        home: Some("/root".into()),
        ..Specifiers::default()
    };
    let unit = Unit::new(&f, &[&f]);
    for e in &unit.entries {
        if let Ok(commands) = parse_exec(&e.value) {
            for c in commands {
                assert!(!c.path.is_empty() && !c.argv.is_empty());
            }
        }
        let _ = expand_specifiers(&e.value, &spec);
    }
});
