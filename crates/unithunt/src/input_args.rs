//! `--input-format`, as every command that reads telemetry takes it (`scan`, `watch`, `eql`,
//! `convert`): `auto` (sniff each file) or one of the formats `readers` knows; and `scan -o`, the
//! printers `output` has. The names and their help come from those crates.

use clap::builder::{PossibleValue, PossibleValuesParser, TypedValueParser};
use unithunt_output::OutputFormat;
use unithunt_readers::Format;

/// The format asked for; `None` is `auto`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct InputFormat(pub Option<Format>);

impl InputFormat {
    /// For `#[arg(value_parser = InputFormat::parser())]`: the names `readers` gives, with help.
    pub fn parser() -> impl TypedValueParser<Value = InputFormat> {
        let auto = PossibleValue::new("auto")
            .help("sniff each file (past a BOM, blank and # comment lines)");
        let formats = Format::ALL
            .into_iter()
            .map(|f| PossibleValue::new(f.name()).help(f.about()));
        PossibleValuesParser::new(std::iter::once(auto).chain(formats))
            .map(|name| InputFormat(name.parse().ok()))
    }
}

/// For `#[arg(value_parser = output_format_parser())]`: the printers' names, with help.
pub fn output_format_parser() -> impl TypedValueParser<Value = OutputFormat> {
    let names = OutputFormat::ALL
        .into_iter()
        .map(|f| PossibleValue::new(f.name()).help(f.about()));
    PossibleValuesParser::new(names).map(|name| name.parse().expect("a name it offered"))
}

/// Says what was not read, and why, on stderr: files a directory held that are not telemetry,
/// members of archives (`archive: member: reason`). The first 20, then how many more.
pub fn say_not_read(skipped: &[String]) {
    const SHOWN: usize = 20;
    if skipped.is_empty() {
        return;
    }
    eprintln!("not read: {} file(s) or member(s):", skipped.len());
    for s in skipped.iter().take(SHOWN) {
        eprintln!("  {}", crate::term::escape(s));
    }
    if skipped.len() > SHOWN {
        eprintln!("  ... and {} more", skipped.len() - SHOWN);
    }
}

/// Each input a path holds (an archive's members, or the file), handed to `f`; what an
/// archive holds that is not read is added to `not_read`. An error opening the path is returned.
pub fn for_each_input(
    path: &std::path::Path,
    format: Option<Format>,
    block: usize,
    not_read: &mut Vec<String>,
    f: &mut dyn FnMut(std::io::Result<unithunt_readers::Input>),
) -> std::io::Result<()> {
    let report = unithunt_readers::open_inputs(path, format, block, f)?;
    if let Some(r) = report {
        let shown = path.to_string_lossy();
        not_read.extend(r.skipped.into_iter().map(|s| format!("{shown}: {s}")));
    }
    Ok(())
}

/// The files under `paths`, what could not be listed (returned as messages), and what a
/// directory held that is not read (appended to `not_read`).
pub fn expand(
    paths: &[std::path::PathBuf],
    not_read: &mut Vec<String>,
) -> (
    Vec<std::path::PathBuf>,
    Vec<(std::path::PathBuf, std::io::Error)>,
) {
    let e = unithunt_readers::expand_paths(paths);
    not_read.extend(
        e.skipped
            .into_iter()
            .map(|(p, why)| format!("{}: {why}", p.to_string_lossy())),
    );
    (e.files, e.errors)
}
