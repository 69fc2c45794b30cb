//! Fuzzes the EQL front end end to end: lexing, parsing, lowering and, for queries that compile,
//! evaluation on two small fixed events; for queries that do not, rendering the error. Both dialects.
//! Nothing may panic.

#![no_main]

use libfuzzer_sys::fuzz_target;
use std::sync::Arc;
use unithunt_engine::Runner;
use unithunt_eql::{compile, EqlOptions};

fn events() -> [serde_json::Value; 2] {
    [
        serde_json::json!({
            "event": {"category": "process"},
            "process": {"name": "bash", "args": ["a", "b"]}
        }),
        serde_json::json!({}),
    ]
}

fuzz_target!(|data: &[u8]| {
    let Ok(input) = std::str::from_utf8(data) else {
        return;
    };
    for opts in [EqlOptions::elasticsearch(), EqlOptions::legacy()] {
        match compile(input, &opts) {
            Ok(q) => {
                let mut runner = Runner::new(&q, Default::default());
                for (ts, doc) in events().into_iter().enumerate() {
                    let mask = runner.evaluate(&doc);
                    runner.advance(Arc::new(doc), ts as i64, mask);
                }
                let _ = runner.finish();
            }
            Err(err) => {
                let _ = err.render(input, "fuzz");
            }
        }
    }
});
