//! The seed's Sigma twin (`rules/sigma/persistence_systemd_service_seed.yml`) and the EQL seed rule
//! decide every event the same way: on 100,000 generated events (the corpus generator's mix, every
//! kind of systemd-relevant event, and proptest-made events with case variants, arrays, missing
//! and near-miss values, where `==` versus `:` and missing-field negation matter).

use proptest::prelude::*;
use serde_json::{json, Value as Json};
use unithunt_rules::{load_sigma, RulePack, RuleSet};

const TWIN: &str = include_str!("../../../rules/sigma/persistence_systemd_service_seed.yml");

fn sets() -> (RuleSet, RuleSet) {
    let mut eql = RulePack::default();
    for r in RulePack::builtin().rules {
        if r.meta.tags.iter().any(|t| t == "Reference") {
            eql.insert(r);
        }
    }
    assert_eq!(eql.rules.len(), 1, "the seed rule is in the built-in pack");
    let (rules, _) = load_sigma(TWIN, "twin.yml", &unithunt_sigma::Pipeline::ecs_linux()).unwrap();
    let mut sigma = RulePack::default();
    rules.into_iter().for_each(|r| sigma.insert(r));
    (RuleSet::new(eql), RuleSet::new(sigma))
}

fn alerts(set: &RuleSet, doc: &Json) -> bool {
    let all: Vec<usize> = (0..set.stages().len()).collect();
    !set.evaluate(doc, &all).is_empty()
}

#[test]
fn twin_and_seed_agree_on_generated_corpora() {
    let (eql, sigma) = sets();
    let mut hits = 0;
    for (rate, n) in [(1.0, 40_000), (0.05, 30_000)] {
        let mut gen = unithunt_corpus::Generator::new(&unithunt_corpus::Config {
            relevant_rate: rate,
            ..Default::default()
        });
        for _ in 0..n {
            let line = gen.next_event().0.to_string();
            let doc: Json = serde_json::from_str(&line).unwrap();
            let (a, b) = (alerts(&eql, &doc), alerts(&sigma, &doc));
            assert_eq!(a, b, "{line}");
            hits += usize::from(a);
        }
    }
    // Both decisions occur often: the agreement is not vacuous.
    assert!(hits > 5_000 && hits < 65_000, "{hits}");
}

fn cased(words: &'static [&'static str]) -> impl Strategy<Value = String> {
    (prop::sample::select(words), any::<u8>()).prop_map(|(w, flips)| {
        w.chars()
            .enumerate()
            .map(|(i, c)| {
                if flips & (1 << (i % 8)) != 0 && flips > 200 {
                    c.to_ascii_uppercase()
                } else {
                    c
                }
            })
            .collect()
    })
}

fn maybe<T: std::fmt::Debug + Clone + 'static>(
    s: impl Strategy<Value = T> + 'static,
) -> impl Strategy<Value = Option<T>> {
    prop::option::weighted(0.8, s)
}

prop_compose! {
    fn event()(
        category in maybe(cased(&["file", "process", "network"])),
        category_array in any::<bool>(),
        etype in maybe(cased(&["creation", "change", "start", "deletion", "end"])),
        dir in cased(&["/etc/systemd/system/", "/lib/systemd/system/", "/usr/lib/systemd/system/",
            "/run/systemd/system/", "/home/u/.config/systemd/user/", "/usr/local/lib/systemd/system/",
            "/etc/systemd/user/", "/tmp/", "/etc/systemd/system/x.d/"]),
        stem in cased(&["evil", "acme", "syslogd", "a.b"]),
        ext in maybe(cased(&["service", "timer", "conf"])),
        name in maybe(cased(&["systemctl", "bash", "dpkg", "rpm", "apt", "ansible-playbook", "puppet", "chef-client", "cp", "python3", "systemd"])),
        args in prop::collection::vec(cased(&["systemctl", "enable", "start", "daemon-reload", "--user", "stop", "x.service"]), 0..4),
        parent in maybe(cased(&["bash", "sh", "dash", "zsh", "python3", "python", "perl", "ruby", "curl", "wget", "sshd", "systemd", "fish"])),
    ) -> Json {
        let mut e = json!({"@timestamp": "2026-11-28T00:00:00Z"});
        if let Some(c) = category {
            e["event"]["category"] = if category_array { json!([c]) } else { json!(c) };
        }
        if let Some(t) = etype {
            e["event"]["type"] = json!([t]);
        }
        let path = match &ext { Some(x) => format!("{dir}{stem}.{x}"), None => format!("{dir}{stem}") };
        e["file"]["path"] = json!(path);
        if let Some(x) = ext {
            e["file"]["extension"] = json!(x);
        }
        if let Some(n) = name {
            e["process"]["name"] = json!(n);
        }
        if !args.is_empty() {
            e["process"]["args"] = json!(args);
        }
        if let Some(p) = parent {
            e["process"]["parent"]["name"] = json!(p);
        }
        e
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 30_000, ..ProptestConfig::default() })]
    #[test]
    fn twin_and_seed_agree_on_varied_events(doc in event()) {
        thread_local! {
            static SETS: (RuleSet, RuleSet) = sets();
        }
        SETS.with(|(eql, sigma)| {
            prop_assert_eq!(alerts(eql, &doc), alerts(sigma, &doc), "{}", doc);
            Ok(())
        })?;
    }
}

/// `unithunt rules convert`: the EQL printed for the twin compiles and decides every event as the
/// Sigma rule does; the EQL of every SigmaHQ Linux rule with an EQL form compiles.
#[test]
fn converted_eql_compiles_and_decides_the_same() {
    use unithunt_engine::{is_true, EvalCtx, QueryKind};
    let pipeline = unithunt_sigma::Pipeline::ecs_linux();
    let to_expr = |text: &str| {
        let q = unithunt_eql::compile(text, &unithunt_eql::EqlOptions::elasticsearch())
            .unwrap_or_else(|e| panic!("{text}: {}", e.message));
        match q.kind {
            QueryKind::Events(e) => e,
            _ => panic!("an event query"),
        }
    };
    let docs = unithunt_sigma::load_documents(TWIN, "twin.yml").unwrap();
    let unithunt_sigma::SigmaDoc::Rule(twin) = &docs[0] else {
        panic!()
    };
    let sigma_expr = unithunt_sigma::compile(twin, &pipeline).unwrap();
    let eql_expr = to_expr(&unithunt_sigma::to_eql(&sigma_expr).unwrap());
    let mut gen = unithunt_corpus::Generator::new(&unithunt_corpus::Config {
        relevant_rate: 1.0,
        ..Default::default()
    });
    for _ in 0..20_000 {
        let doc: Json = serde_json::from_str(gen.next_event().0).unwrap();
        assert_eq!(
            is_true(&sigma_expr, &mut EvalCtx::new(&doc)),
            is_true(&eql_expr, &mut EvalCtx::new(&doc)),
            "{doc}"
        );
    }
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/peer/sigma/rules/linux");
    // Peer data is required: a missing ../shared fails here, loudly, rather than converting nothing.
    assert!(
        root.is_dir(),
        "{} is missing: ../shared must sit beside the repository",
        root.display()
    );
    let mut files = Vec::new();
    let mut stack = vec![root];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|x| x == "yml") {
                files.push(p);
            }
        }
    }
    let (mut converted, mut per_record) = (0, 0);
    for f in &files {
        let text = std::fs::read_to_string(f).unwrap();
        for d in unithunt_sigma::load_documents(&text, &f.display().to_string()).unwrap() {
            let unithunt_sigma::SigmaDoc::Rule(r) = d else {
                continue;
            };
            let e = unithunt_sigma::compile(&r, &pipeline).unwrap();
            match unithunt_sigma::to_eql(&e) {
                Ok(text) => {
                    to_expr(&text);
                    converted += 1;
                }
                Err(why) if why.contains("per raw audit record") => per_record += 1,
                Err(why) => panic!("{}: {why}", f.display()),
            }
        }
    }
    assert!(
        converted > 100 && per_record > 20,
        "{converted} converted, {per_record} per record"
    );
}

/// Issue 19, item 15: every rule of the built-in pack, the seed rule included, carries an
/// investigation guide and a response section (the README promises both).
#[test]
fn every_built_in_rule_has_a_guide_and_a_response() {
    let pack = unithunt_rules::RulePack::builtin();
    assert!(pack.rules.len() >= 6);
    for r in &pack.rules {
        let note = r.meta.note.as_deref().unwrap_or("");
        assert!(
            note.contains("## Triage and analysis"),
            "{}: no investigation guide",
            r.meta.name
        );
        assert!(
            note.contains("## Response and remediation"),
            "{}: no response section",
            r.meta.name
        );
    }
}
