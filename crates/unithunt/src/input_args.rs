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
