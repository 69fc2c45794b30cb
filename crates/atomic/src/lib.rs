//! The seed page's adversary tests, built in (`unithunt atomic`, `unithunt rules coverage`).
//!
//! # Brief overview
//!
//! - [`catalogue`]: the tests and techniques as data (`examples/atomic/catalogue.toml`): what each
//!   does, the signal each data source should record, the rules that must alert, its `sh` script.
//! - [`emit`]: the telemetry a real run produced (the auditd recording in `examples/atomic/`, and
//!   its LAUREL, Sysmon and Defender renderings), sliced by the recording's markers.
//! - [`coverage_markdown`]: test × input format × rule, and every recorded technique in every
//!   format (`docs/coverage.md`).
//! - [`run_one`]: plays a test (live with `--yes`, or into a directory tree), always cleaning up;
//!   [`verify`]: plays them under auditd and judges the alerts a scan of the log raised.
//!
//! ```
//! use unithunt_atomic::{emit, find, Rendering};
//! let test = find("1").unwrap();
//! assert!(test.malicious && test.rules.iter().any(|r| r == "Systemd Unit Written Then Activated"));
//! let records = String::from_utf8(emit(test, Rendering::Auditd).unwrap()).unwrap();
//! // The real recording of the test (its unit was named acme-updater.service there).
//! assert!(records.contains("name=\"/etc/systemd/system/acme-updater.service\""));
//! ```

pub mod catalogue;
mod coverage;
pub mod dirs;
mod play;
mod recording;
mod verify;

pub use catalogue::{catalogue, find, techniques, tests, Atomic, Technique};
pub use coverage::coverage_markdown;
pub use play::{run_one, show};
pub use recording::{emit, Rendering};
pub use verify::verify;

#[cfg(test)]
mod tests {
    use crate::catalogue::*;
    use crate::coverage::*;
    use crate::play::*;
    use crate::recording::*;
    use crate::verify::*;
    use unithunt_readers::Format;

    /// The catalogue is data shipped in the binary: it parses, ids are unique, and every rule it
    /// names is in the default pack under that name.
    #[test]
    fn the_catalogue_names_rules_of_the_pack() {
        let pack = unithunt_rules::RulePack::builtin();
        let known = |name: &str| pack.rules.iter().any(|r| r.meta.name == name);
        let mut ids = std::collections::HashSet::new();
        for t in tests() {
            assert!(ids.insert(t.id.as_str()), "test {} twice", t.id);
            assert_eq!(t.malicious, !t.rules.is_empty(), "test {}", t.id);
            for r in &t.rules {
                assert!(known(r), "test {}: no rule {r:?} in the pack", t.id);
            }
            assert!(
                t.script().is_none_or(|s| !s.contains("%UNIT%")),
                "test {}",
                t.id
            );
        }
        assert_eq!(tests().len(), 6);
        for tq in techniques() {
            assert!(ids.insert(tq.id.as_str()), "technique {} twice", tq.id);
            assert!(
                known(&tq.rule),
                "technique {}: no rule {:?}",
                tq.id,
                tq.rule
            );
        }
        assert!(techniques().len() >= 20, "{}", techniques().len());
    }

    #[test]
    fn every_scenario_is_in_the_recording_and_emits_alerting_ecs() {
        for t in tests() {
            let lines = recorded_lines(&t.recorded_as);
            assert!(lines.len() > 5, "{}: {} lines", t.id, lines.len());
            let ecs = audit_to_ecs(lines.join("\n").into_bytes()).unwrap();
            let events = ecs.split(|&b| b == b'\n').filter(|l| !l.is_empty()).count();
            assert!(events > 0, "{}", t.id);
        }
        // Test 3's records hold the look-alike unit; B1's the package's.
        assert!(recorded_lines("D3")
            .iter()
            .any(|l| l.contains("rsyslogd.service")));
        assert!(recorded_lines("B1")
            .iter()
            .any(|l| l.contains("atd.service")));
    }

    #[test]
    fn scripts_play_into_a_directory_tree() {
        let root =
            std::env::temp_dir().join(format!("unithunt-atomic-root-{}", std::process::id()));
        for t in tests().iter().filter(|t| t.script.is_some()) {
            let (ok, out) = play(t, Some(&root));
            assert!(ok, "test {}: {out}", t.id);
            for a in t.artefacts.iter().filter(|a| !a.contains(".wants/")) {
                assert!(
                    root.join(a.trim_start_matches('/')).exists(),
                    "test {}: {a}",
                    t.id
                );
            }
        }
        // The generator ran, as systemd runs it, and wrote its unit.
        let generated = root.join("run/systemd/generator/unithunt-atomic-gen.service");
        assert!(std::fs::read_to_string(generated)
            .unwrap()
            .contains("ExecStart=/bin/true"));
        let unit =
            std::fs::read_to_string(root.join("etc/systemd/system/syslogd.service")).unwrap();
        assert!(
            unit.starts_with("[Unit]\nDescription=unithunt atomic test\n"),
            "{unit}"
        );
        let _ = std::fs::remove_dir_all(&root);
    }

    #[test]
    fn every_recorded_technique_is_caught_by_its_rule() {
        use unithunt_rules::examples::{alerts_on, Expect, RuleExample};
        let pack = unithunt_rules::RulePack::builtin();
        for Technique { id, rule: must, .. } in techniques() {
            let events = to_ecs(Format::Auditd, technique_lines(id).join("\n").into_bytes());
            assert!(events.len() >= 2, "{id}: the marker and the technique");
            let rule = pack.rules.iter().find(|r| r.meta.name == *must).unwrap();
            let example = RuleExample {
                expect: Expect::Alert,
                why: String::new(),
                events,
            };
            assert_eq!(alerts_on(rule, &example), Some(true), "{id}: {must}");
        }
        // The last marker closes the last technique.
        assert!(technique_lines("end").iter().all(|l| !l.contains("sys1og")));
    }

    #[test]
    fn every_technique_is_caught_in_every_format_that_can_show_it() {
        use unithunt_rules::examples::{alerts_on, Expect, RuleExample};
        let pack = unithunt_rules::RulePack::builtin();
        for Technique { id, rule: must, .. } in techniques() {
            let rule = pack.rules.iter().find(|r| r.meta.name == *must).unwrap();
            for source in SOURCES {
                let events = technique_events(id, source);
                let example = RuleExample {
                    expect: Expect::Alert,
                    why: String::new(),
                    events,
                };
                let fired = alerts_on(rule, &example) == Some(true);
                match unobservable(id, source) {
                    None => assert!(fired, "{id} in {}: {must}", label(source)),
                    // The reason given is true: the rule cannot alert there.
                    Some(why) => assert!(!fired, "{id} in {}: said `{why}`", label(source)),
                }
            }
        }
    }

    #[test]
    fn each_technique_rendering_holds_only_its_own_events() {
        // The serial windows split the renderings: the look-alike unit's file event is in its
        // technique only, in every format that has it.
        for source in SOURCES {
            for Technique { id, .. } in techniques() {
                let has = technique_events(id, source)
                    .iter()
                    .any(|e| e["file"]["name"] == "sys1og.service");
                assert_eq!(has, id == "lookalike-digit", "{id} in {}", label(source));
            }
        }
    }

    #[test]
    fn the_log_written_since_a_point_survives_rotation() {
        let dir = std::env::temp_dir().join(format!("unithunt-rotate-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let log = dir.join("audit.log");
        std::fs::write(&log, "old 1\nold 2\n").unwrap();
        std::fs::write(dir.join("audit.log.1"), "older\n").unwrap();
        let start = log_position(&log);
        std::fs::write(&log, "old 1\nold 2\nnew 1\n").unwrap();
        assert_eq!(written_since(&log, start).unwrap(), b"new 1\n");
        // auditd rotates: audit.log -> audit.log.1 (the older one moves up), a fresh audit.log.
        std::fs::rename(dir.join("audit.log.1"), dir.join("audit.log.2")).unwrap();
        std::fs::rename(&log, dir.join("audit.log.1")).unwrap();
        std::fs::write(&log, "new 2\n").unwrap();
        assert_eq!(written_since(&log, start).unwrap(), b"new 1\nnew 2\n");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn timestamps_print_like_the_alerts_do() {
        assert_eq!(iso_ms(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(iso_ms(1_795_806_431_384), "2026-11-27T19:07:11.384Z");
        assert_eq!(iso_ms(951_782_400_000), "2000-02-29T00:00:00.000Z");
    }
}
