//! `unithunt rules`: work with rule files. `convert` prints the EQL each Sigma rule compiles to, so
//! a rule tested here can be taken to Elastic Security.

use crate::term::escape;
use std::path::PathBuf;
use std::process::ExitCode;
use unithunt_sigma::{compile, load_documents, to_eql, Pipeline, SigmaDoc};

#[derive(clap::Subcommand)]
pub enum RulesCommand {
    /// Print the EQL (Elasticsearch dialect) each Sigma rule compiles to, with the built-in ECS
    /// field mapping (pipelines/ecs-linux.yml).
    Convert {
        /// Sigma rule files (.yml; several documents each allowed).
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
}

pub fn run(cmd: RulesCommand) -> ExitCode {
    match cmd {
        RulesCommand::Convert { files } => convert(&files),
    }
}

fn convert(files: &[PathBuf]) -> ExitCode {
    let pipeline = Pipeline::ecs_linux();
    let mut failed = false;
    for f in files {
        let origin = f.display().to_string();
        let text = match std::fs::read_to_string(f) {
            Ok(t) => t,
            Err(e) => {
                eprintln!("error: {}: {e}", escape(&origin));
                failed = true;
                continue;
            }
        };
        let docs = match load_documents(&text, &origin) {
            Ok(d) => d,
            Err(e) => {
                eprintln!("{}", escape(&e.to_string()));
                failed = true;
                continue;
            }
        };
        for d in docs {
            let SigmaDoc::Rule(rule) = d else {
                eprintln!(
                    "{}: a correlation or filter document has no EQL form of its own; skipped",
                    escape(&origin)
                );
                continue;
            };
            match compile(&rule, &pipeline)
                .map_err(|e| e.to_string())
                .and_then(|e| to_eql(&e).map_err(|why| format!("error: {origin}: {why}")))
            {
                Ok(eql) => {
                    println!(
                        "// {}  ({})",
                        escape(&rule.title),
                        escape(rule.id.as_deref().unwrap_or("no id"))
                    );
                    println!("{eql}\n");
                }
                Err(e) => {
                    eprintln!("{}", escape(&e));
                    failed = true;
                }
            }
        }
    }
    if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}
