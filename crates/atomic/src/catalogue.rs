//! The catalogue: `examples/atomic/catalogue.toml`, embedded and read once.

use serde::Deserialize;
use std::sync::OnceLock;

/// Every test and technique, and what playing them needs.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Catalogue {
    /// The account test 2 creates (and a live run removes).
    pub user: String,
    /// The key of the audit rules `verify` loads (and removes).
    pub audit_key: String,
    pub audit_rules: Vec<String>,
    /// The unit the scripts write (`%UNIT%` in a script).
    pub unit: String,
    pub test: Vec<Atomic>,
    pub technique: Vec<Technique>,
}

/// One adversary test of the seed page (or a benign twin).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Atomic {
    pub id: String,
    /// Its scenario in the recording.
    pub recorded_as: String,
    pub name: String,
    pub malicious: bool,
    pub what: String,
    /// What each data source should record, as the seed page lists them.
    pub signals: Vec<Signal>,
    /// Rules of the default pack that must alert on it (none for benign tests).
    #[serde(default)]
    pub rules: Vec<String>,
    /// The test, for `sh -c`; `None`: not played.
    pub script: Option<String>,
    /// Files it leaves, under `$R`.
    #[serde(default)]
    pub artefacts: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Signal {
    pub source: String,
    pub signal: String,
}

/// A technique of the rule pack's scope, recorded under auditd.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Technique {
    pub id: String,
    /// What was done.
    pub what: String,
    /// The rule that must alert on it.
    pub rule: String,
}

const CATALOGUE: &str = include_str!("../../../examples/atomic/catalogue.toml");

/// The catalogue (a defect in it, which ships inside the binary, is caught by the tests).
pub fn catalogue() -> &'static Catalogue {
    static PARSED: OnceLock<Catalogue> = OnceLock::new();
    PARSED.get_or_init(|| toml::from_str(CATALOGUE).expect("examples/atomic/catalogue.toml"))
}

/// The tests, in the catalogue's order.
pub fn tests() -> &'static [Atomic] {
    &catalogue().test
}

/// The recorded techniques.
pub fn techniques() -> &'static [Technique] {
    &catalogue().technique
}

/// The test named `id` (case-insensitive).
pub fn find(id: &str) -> Option<&'static Atomic> {
    tests().iter().find(|t| t.id.eq_ignore_ascii_case(id))
}

impl Atomic {
    /// The script with the unit filled in.
    pub fn script(&self) -> Option<String> {
        self.script
            .as_deref()
            .map(|s| s.replace("%UNIT%", &catalogue().unit))
    }
}
