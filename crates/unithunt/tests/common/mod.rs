//! What several test files share. Each test file that uses it declares `mod common;` (Cargo
//! builds every file of `tests/` as its own crate; this folder is not one).

#![allow(dead_code)] // each test crate uses a part

/// Two Sigma base rules and two correlations over them (an event count per host within 5 min,
/// and an ordered pair per host and user within 1 min), which fire on the seed's adversary tests.
pub const CORRELATIONS: &str = r#"title: Unit file written
name: unit_written
logsource: {product: linux, category: file_event}
detection:
    s: {TargetFilename|endswith: .service}
    condition: s
---
title: systemctl from a shell
name: shell_systemctl
logsource: {product: linux, category: process_creation}
detection:
    s: {Image|endswith: /systemctl, ParentImage|endswith: /bash}
    condition: s
---
title: Three systemctl runs from shells on one host within 5 minutes
id: 22222222-2222-4222-8222-222222222222
correlation:
    type: event_count
    rules: [shell_systemctl]
    group-by: [host.name]
    timespan: 5m
    condition: {gte: 3}
level: high
---
title: A unit written, then systemctl from a shell, by one user on one host
correlation:
    type: temporal_ordered
    rules: [unit_written, shell_systemctl]
    group-by: [host.name, user.name]
    timespan: 1m
level: critical
"#;
