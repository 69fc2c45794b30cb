//! Fuzzes the Sigma loader end to end: YAML with budgets, the rule schema, detection and modifiers,
//! the condition, the ECS pipeline, evaluation on a small event, and the EQL a rule converts to
//! (which must compile again). Correlations and filters are loaded too. Nothing may panic or
//! overflow the stack.

#![no_main]

use libfuzzer_sys::fuzz_target;
use unithunt_engine::{eval, EvalCtx};
use unithunt_event::Json;
use unithunt_sigma::{compile, compile_filter, load_documents, to_eql, Pipeline, SigmaDoc};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let docs = match load_documents(text, "fuzz.yml") {
        Ok(docs) => docs,
        Err(e) => {
            let _ = e.to_string();
            return;
        }
    };
    let pipeline = Pipeline::ecs_linux();
    let event: Json = serde_json::from_str(
        r#"{"event":{"category":["process"],"type":["start"]},"process":{"name":"bash","executable":"/usr/bin/bash","args":["bash","-c","x"],"command_line":"bash -c x","parent":{"name":"sshd"}},"host":{"os":{"type":"linux"}}}"#,
    )
    .unwrap();
    for doc in &docs {
        let compiled = match doc {
            SigmaDoc::Rule(r) => compile(r, &pipeline),
            SigmaDoc::Filter(f) => compile_filter(f, &pipeline),
            _ => continue,
        };
        match compiled {
            Ok(expr) => {
                let _ = eval(&expr, &mut EvalCtx::new(&event));
                if let Ok(query) = to_eql(&expr) {
                    let _ = unithunt_eql::compile(&query, &unithunt_eql::EqlOptions::elasticsearch());
                }
            }
            Err(e) => {
                let _ = e.to_string();
            }
        }
    }
});
