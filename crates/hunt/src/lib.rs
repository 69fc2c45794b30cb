//! Hunting persistence in systemd's own files.
//!
//! `unit`: unit files read the way systemd reads them (systemd.syntax(7)): sections, comments,
//! continuation lines, assignments and resets, the effective unit after drop-ins, `Exec*=` command
//! lines with their prefixes, quoting and escapes, and specifiers. The enumeration of load paths,
//! package ownership and scoring build on it.

pub mod unit;
