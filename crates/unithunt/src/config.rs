//! The configuration file: options people give every time, set once (`docs/config.md`).
//!
//! `--config FILE`, or else `/etc/unithunt/config.toml` and then `~/.config/unithunt/config.toml`
//! (both when both exist, the user's after the system's). One table per command (`[scan]`,
//! `[watch]`, `[stream]`, `[eql]`, `[hunt]`, `[convert]`), whose keys are the command's long
//! options with `_` or `-` (`min_severity = "high"`, `rules = ["/etc/unithunt/rules"]`,
//! `fail_on_alert = true`). They are inserted before the command line's own options, so a flag
//! given on the command line wins over the file (lists add up). An unknown key is clap's error
//! for an unknown flag, said with the file that holds it.

use std::ffi::OsString;
use std::path::{Path, PathBuf};

/// The commands a configuration file may set options of.
pub const COMMANDS: &[&str] = &["scan", "watch", "stream", "eql", "hunt", "convert"];

/// A configuration file is at most this large.
const MAX_BYTES: u64 = 1 << 20;

/// The files read when `--config` is not given, in order.
fn default_files() -> Vec<PathBuf> {
    let mut files = vec![PathBuf::from("/etc/unithunt/config.toml")];
    let user = std::env::var_os("XDG_CONFIG_HOME")
        .map(PathBuf::from)
        .filter(|p| p.is_absolute())
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".config")));
    if let Some(dir) = user {
        files.push(dir.join("unithunt/config.toml"));
    }
    files
}

/// The arguments with the configuration's options for the command inserted after its name, and
/// the files they came from. `--config FILE` is taken out of the arguments.
pub fn apply(mut args: Vec<OsString>) -> Result<(Vec<OsString>, Vec<PathBuf>), String> {
    let mut explicit = None;
    if let Some(i) = args.iter().position(|a| a == "--config") {
        if i + 1 >= args.len() {
            return Err("error: --config needs a FILE".into());
        }
        explicit = Some(PathBuf::from(args.remove(i + 1)));
        args.remove(i);
    } else if let Some(i) = args
        .iter()
        .position(|a| a.to_str().is_some_and(|s| s.starts_with("--config=")))
    {
        let a = args.remove(i);
        explicit = Some(PathBuf::from(&a.to_string_lossy()["--config=".len()..]));
    }
    let Some(command) = args
        .get(1)
        .and_then(|a| a.to_str())
        .filter(|c| COMMANDS.contains(c))
        .map(str::to_string)
    else {
        return Ok((args, Vec::new()));
    };
    let files = match explicit {
        Some(f) => vec![f],
        None => default_files()
            .into_iter()
            .filter(|f| f.is_file())
            .collect(),
    };
    let mut extra = Vec::new();
    for f in &files {
        extra.extend(options_of(f, &command)?);
    }
    args.splice(2..2, extra);
    Ok((args, files))
}

/// The options a file sets for `command`, as command-line arguments.
fn options_of(file: &Path, command: &str) -> Result<Vec<OsString>, String> {
    use std::io::Read;
    let shown = file.display().to_string();
    let mut text = String::new();
    std::fs::File::open(file)
        .and_then(|f| f.take(MAX_BYTES + 1).read_to_string(&mut text))
        .map_err(|e| format!("error: config {shown}: {e}"))?;
    if text.len() as u64 > MAX_BYTES {
        return Err(format!("error: config {shown}: larger than 1 MiB"));
    }
    let doc: toml::Table = toml::from_str(&text).map_err(|e| {
        let line = e.span().map_or(1, |s| {
            text[..s.start.min(text.len())].matches('\n').count() + 1
        });
        format!("error: config {shown}:{line}: {}", e.message())
    })?;
    for k in doc.keys() {
        if !COMMANDS.contains(&k.as_str()) {
            return Err(format!(
                "error: config {shown}: [{k}] is not a command whose options it can set ({})",
                COMMANDS.join(", ")
            ));
        }
    }
    let Some(table) = doc.get(command) else {
        return Ok(Vec::new());
    };
    let table = table
        .as_table()
        .ok_or_else(|| format!("error: config {shown}: `{command}` must be a table"))?;
    let mut out = Vec::new();
    for (key, value) in table {
        let flag = format!("--{}", key.replace('_', "-"));
        let scalar = |v: &toml::Value| -> Result<Option<String>, String> {
            Ok(match v {
                toml::Value::String(s) => Some(s.clone()),
                toml::Value::Integer(i) => Some(i.to_string()),
                toml::Value::Float(f) => Some(f.to_string()),
                toml::Value::Boolean(_) => None,
                _ => {
                    return Err(format!(
                        "error: config {shown}: [{command}] {key}: a string, a number, true or a list of them"
                    ))
                }
            })
        };
        match value {
            toml::Value::Boolean(true) => out.push(OsString::from(&flag)),
            toml::Value::Boolean(false) => {}
            toml::Value::Array(items) => {
                for item in items {
                    if let Some(v) = scalar(item)? {
                        out.push(OsString::from(&flag));
                        out.push(OsString::from(v));
                    }
                }
            }
            v => {
                if let Some(v) = scalar(v)? {
                    // `--flag=value`: a value starting with `-` is not read as a flag.
                    out.push(OsString::from(format!("{flag}={v}")));
                }
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_command_table_becomes_options_before_the_command_line() {
        let dir = std::env::temp_dir().join(format!("unithunt-config-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let f = dir.join("config.toml");
        std::fs::write(
            &f,
            "[scan]\nrules = [\"/r1\", \"/r2\"]\nfail_on_alert = true\nquiet = false\noutput = \"ndjson\"\n[hunt]\nmin-severity = \"high\"\n",
        )
        .unwrap();
        let args = |v: &[&str]| v.iter().map(OsString::from).collect::<Vec<_>>();
        let (got, files) = apply(args(&[
            "unithunt",
            "--config",
            f.to_str().unwrap(),
            "scan",
            "x.log",
        ]))
        .unwrap();
        assert_eq!(files, vec![f.clone()]);
        let got: Vec<String> = got
            .iter()
            .map(|a| a.to_string_lossy().into_owned())
            .collect();
        assert_eq!(
            got,
            [
                "unithunt",
                "scan",
                "--fail-on-alert",
                "--output=ndjson",
                "--rules",
                "/r1",
                "--rules",
                "/r2",
                "x.log"
            ]
        );
        // A command without a table, and what is not a command: untouched.
        let (got, _) = apply(args(&[
            "unithunt",
            "--config",
            f.to_str().unwrap(),
            "eql",
            "q",
        ]))
        .unwrap();
        assert_eq!(got.len(), 3);
        std::fs::write(&f, "[scna]\nrules = 1\n").unwrap();
        let e = apply(args(&["unithunt", "--config", f.to_str().unwrap(), "scan"])).unwrap_err();
        assert!(e.contains("[scna] is not a command"), "{e}");
        std::fs::write(&f, "[scan]\nrules = \n").unwrap();
        let e = apply(args(&["unithunt", "--config", f.to_str().unwrap(), "scan"])).unwrap_err();
        assert!(e.contains("config.toml:2:"), "{e}");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
