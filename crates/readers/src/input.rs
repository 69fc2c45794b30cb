//! One input (a file, standard input, bytes) read as one format: blocks of ECS NDJSON, whatever
//! the source. Every command reads through [`Input`] and [`Converters`], so all of them read every
//! format, compressed or not, with or without a byte order mark.

use crate::format::{sniff, ConvertOptions, Format};
use crate::{Block, BlockReader, Converter};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// An opened input whose format is known: given, or sniffed from its first block.
pub struct Input {
    reader: BlockReader,
    pub format: Format,
    /// The format was sniffed, not given.
    pub sniffed: bool,
    /// The first block, read to sniff, not handed out yet.
    first: Option<Block>,
    /// A read error met before the first block.
    first_error: Option<io::Error>,
    /// No more source blocks: a read error ended the input.
    ended: bool,
    /// The converter's last block (what it still held) was handed out.
    finished: bool,
}

impl Input {
    /// Opens a path (`-` is standard input) and decides its format (`None`: sniff it).
    pub fn open(path: &std::path::Path, format: Option<Format>, block: usize) -> io::Result<Input> {
        Ok(Input::new(BlockReader::open_path(path)?, format, block))
    }

    /// An input over bytes in memory (tests, embedded recordings, a message's value).
    pub fn from_bytes(name: &str, bytes: Vec<u8>, format: Option<Format>) -> io::Result<Input> {
        let reader = BlockReader::from_reader(name, Box::new(io::Cursor::new(bytes)))?;
        Ok(Input::new(reader, format, 1 << 20))
    }

    /// Reads the first block (of about `block` bytes) and decides the format from it.
    pub fn new(mut reader: BlockReader, format: Option<Format>, block: usize) -> Input {
        let (first, first_error) = match reader.next_block(block) {
            Ok(b) => (b, None),
            Err(e) => (None, Some(e)),
        };
        let sniffed = format.is_none();
        let format = format.unwrap_or_else(|| sniff(first.as_ref().map_or(&[][..], |b| &b.data)));
        Input {
            reader,
            format,
            sniffed,
            first,
            first_error,
            ended: false,
            finished: false,
        }
    }

    pub fn name(&self) -> &Arc<str> {
        self.reader.name()
    }

    /// The reader underneath (bytes decoded, raw offset for errors, compression).
    pub fn reader(&self) -> &BlockReader {
        &self.reader
    }

    /// The first block, not handed out yet (to look at before reading on).
    pub fn first_block(&mut self) -> Option<&mut Block> {
        self.first.as_mut()
    }

    /// The next block of source lines, as read (not converted).
    pub fn next_raw(&mut self, block: usize) -> io::Result<Option<Block>> {
        if let Some(e) = self.first_error.take() {
            self.ended = true;
            return Err(e);
        }
        if self.ended {
            return Ok(None);
        }
        match self.first.take() {
            Some(b) => Ok(Some(b)),
            None => self.reader.next_block(block),
        }
    }

    /// The next block of ECS NDJSON: the source block converted through `converter` (the one for
    /// this input's format; `None` for ECS), and at the end what the converter still holds, once.
    /// After a read error the next call gives that last block, so nothing read is lost.
    pub fn next_ecs(
        &mut self,
        converter: Option<&mut Converter>,
        block: usize,
    ) -> io::Result<Option<Block>> {
        if self.finished {
            return Ok(None);
        }
        let raw = self.next_raw(block);
        match (raw, converter) {
            (Ok(Some(b)), Some(c)) => Ok(Some(c.convert(b))),
            (Ok(Some(b)), None) => Ok(Some(b)),
            (Ok(None), Some(c)) => {
                self.finished = true;
                Ok(Some(c.finish_file(self.name().clone(), self.reader.bytes)))
            }
            (Ok(None), None) => {
                self.finished = true;
                Ok(None)
            }
            (Err(e), Some(_)) => {
                // The converter's last block closes the file with the next call.
                self.ended = true;
                Err(e)
            }
            (Err(e), None) => {
                self.finished = true;
                Err(e)
            }
        }
    }
}

/// One converter per format, made when first needed and kept across files: rotated logs
/// continue one another (the process table carries over).
pub struct Converters {
    options: ConvertOptions,
    made: Vec<(Format, Converter)>,
}

impl Converters {
    pub fn new(options: ConvertOptions) -> Converters {
        Converters {
            options,
            made: Vec::new(),
        }
    }

    /// The converter of `format` (none for ECS).
    pub fn get(&mut self, format: Format) -> Option<&mut Converter> {
        let i = match self.made.iter().position(|(f, _)| *f == format) {
            Some(i) => i,
            None => {
                let c = format.converter(&self.options)?;
                self.made.push((format, c));
                self.made.len() - 1
            }
        };
        Some(&mut self.made[i].1)
    }

    /// Takes the converter of `format` out (to share it across threads), made if need be.
    pub fn take(&mut self, format: Format) -> Option<Converter> {
        self.get(format)?;
        let i = self.made.iter().position(|(f, _)| *f == format)?;
        Some(self.made.swap_remove(i).1)
    }

    /// Puts a converter taken out back.
    pub fn put(&mut self, format: Format, converter: Converter) {
        self.made.push((format, converter));
    }
}

/// Inside directories, only files that look like exported telemetry are read (named files are
/// always read): `*.json`, `*.ndjson`, `*.jsonl`, `*.log`, files without an extension, each possibly
/// compressed (`.gz`, `.zst`). A README or a rule file next to the exports is not an input.
fn looks_like_telemetry(p: &Path) -> bool {
    let name = p
        .file_name()
        .map(|n| n.to_string_lossy().to_ascii_lowercase())
        .unwrap_or_default();
    let base = name
        .strip_suffix(".gz")
        .or_else(|| name.strip_suffix(".zst"))
        .unwrap_or(&name);
    // Rotated logs: `audit.log.1`, `messages.2.gz`.
    let base = match base.rsplit_once('.') {
        Some((stem, n)) if !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()) => stem,
        _ => base,
    };
    match base.rsplit_once('.') {
        None => true,
        Some((_, ext)) => matches!(ext, "json" | "ndjson" | "jsonl" | "log"),
    }
}

/// The files a command reads, from the paths it was given.
#[derive(Debug, Default)]
pub struct Expanded {
    /// Files named, and the telemetry files under directories named (sorted, recursively); `-`
    /// stays (standard input).
    pub files: Vec<PathBuf>,
    /// What could not be opened or listed.
    pub errors: Vec<(PathBuf, io::Error)>,
    /// Files under a directory that are not read, and why (said in the summary: never a silent
    /// drop).
    pub skipped: Vec<(PathBuf, String)>,
}

/// Whether the first bytes of a file are a format unithunt reads (an archive counts: its
/// members are read). Used for files in directories whose name does not say.
fn content_is_telemetry(p: &Path) -> io::Result<bool> {
    if crate::archive::archive_kind(p)?.is_some() {
        return Ok(true);
    }
    // Decompressed as the scan would read it.
    let mut r = crate::BlockReader::open_path(p)?;
    let head = r.next_block(64 << 10)?;
    let head = head.as_ref().map_or(&[][..], |b| &b.data[..]);
    Ok(match crate::format::sniff_decided(head) {
        None => false,
        Some(Format::Ecs) => {
            let t = crate::format::significant(head);
            t.starts_with(b"{") || t.starts_with(b"[")
        }
        Some(_) => true,
    })
}

/// Expands directories (recursively, sorted) into files. In a directory, a file is read when its
/// name says telemetry (`*.json`, `*.ndjson`, `*.jsonl`, `*.log`, no extension, rotated and
/// compressed forms) or its content is a format unithunt reads (a Defender `.csv`, a Sysmon
/// `.syslog`, an archive); everything else is listed in [`Expanded::skipped`] with the reason.
/// A file named on the command line is always read. Paths stay `PathBuf`s: file names need not
/// be UTF-8, and are shown escaped and lossily only in messages.
pub fn expand_paths(paths: &[PathBuf]) -> Expanded {
    let mut out = Expanded::default();
    for p in paths {
        if p.as_os_str() == "-" {
            out.files.push(p.clone());
            continue;
        }
        match std::fs::metadata(p) {
            Ok(m) if m.is_dir() => {
                let mut files = Vec::new();
                let mut stack = vec![p.clone()];
                while let Some(dir) = stack.pop() {
                    match std::fs::read_dir(&dir) {
                        Ok(rd) => {
                            for e in rd.flatten() {
                                let ep = e.path();
                                match e.file_type() {
                                    Ok(t) if t.is_dir() => stack.push(ep),
                                    Ok(t) if t.is_file() => {
                                        if looks_like_telemetry(&ep) {
                                            files.push(ep);
                                            continue;
                                        }
                                        match content_is_telemetry(&ep) {
                                            Ok(true) => files.push(ep),
                                            Ok(false) => out.skipped.push((
                                                ep,
                                                "neither its name nor its content is a format unithunt reads".into(),
                                            )),
                                            Err(e) => out.errors.push((ep, e)),
                                        }
                                    }
                                    Ok(t) if t.is_symlink() => out.skipped.push((
                                        ep,
                                        "a symbolic link (not followed inside directories; name it to read it)".into(),
                                    )),
                                    Ok(_) => out.skipped.push((
                                        ep,
                                        "not a regular file".into(),
                                    )),
                                    Err(err) => out.errors.push((ep, err)),
                                }
                            }
                        }
                        Err(e) => out.errors.push((dir, e)),
                    }
                }
                files.sort();
                out.files.extend(files);
            }
            Ok(_) => out.files.push(p.clone()),
            Err(e) => out.errors.push((p.clone(), e)),
        }
    }
    out.skipped.sort();
    out
}

/// The source bytes of an input, block after block, as one reader (for the line reader of ECS).
struct RawBytes {
    input: Input,
    block: Option<Block>,
    at: usize,
}

impl io::Read for RawBytes {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            if let Some(b) = &self.block {
                if self.at < b.data.len() {
                    let n = buf.len().min(b.data.len() - self.at);
                    buf[..n].copy_from_slice(&b.data[self.at..self.at + n]);
                    self.at += n;
                    return Ok(n);
                }
            }
            match self.input.next_raw(1 << 20)? {
                Some(b) => {
                    self.block = Some(b);
                    self.at = 0;
                }
                None => return Ok(0),
            }
        }
    }
}

/// Streams every event of `input` as a JSON document to `sink`, with the line it starts at (for
/// a converted format, the first source line of its block). ECS is read as [`crate::read_events`]
/// reads it (NDJSON, an array, a search response), `keep` seeing each raw line first; the other
/// formats go through `converter` (the one for `input.format`), `keep` seeing each ECS line.
/// Skipped source lines are counted and reported in `stats` with their line.
pub fn read_input(
    mut input: Input,
    converter: Option<&mut Converter>,
    keep: &mut dyn FnMut(&[u8]) -> bool,
    sink: &mut dyn FnMut(serde_json::Value, u64),
    stats: &mut crate::ReadStats,
) -> io::Result<()> {
    let Some(converter) = converter else {
        let name = input.name().to_string();
        let raw = RawBytes {
            input,
            block: None,
            at: 0,
        };
        let src = crate::Source {
            name,
            reader: Box::new(io::BufReader::with_capacity(1 << 20, raw)),
        };
        return crate::read_events(src, keep, sink, stats);
    };
    stats.files += 1;
    let name = input.name().to_string();
    let mut base = 0u64;
    let mut error = None;
    loop {
        let block = match input.next_ecs(Some(&mut *converter), 1 << 20) {
            Ok(Some(b)) => b,
            Ok(None) => break,
            Err(e) => {
                // The converter's last block comes with the next call.
                error.get_or_insert(e);
                continue;
            }
        };
        let first_line = base + 1;
        if let Some(c) = &block.converted {
            stats.lines += c.lines;
            for s in &c.skipped {
                stats.skip(&name, base + s.line + 1, s.reason.clone());
            }
            base += c.lines;
        }
        for line in block.data.split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
            if !keep(line) {
                stats.filtered += 1;
                continue;
            }
            match serde_json::from_slice(line) {
                Ok(doc) => {
                    stats.events += 1;
                    sink(doc, first_line);
                }
                // (Converters write valid JSON: a defect, said rather than dropped.)
                Err(e) => stats.skip(
                    &name,
                    first_line,
                    format!("converted event unreadable: {e}"),
                ),
            }
        }
    }
    stats.bytes += input.reader().bytes;
    error.map_or(Ok(()), Err)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn directories_yield_telemetry_files_only() {
        for yes in [
            "a.ndjson",
            "b.json.gz",
            "c.JSONL.zst",
            "audit.log",
            "export",
            "x.log.gz",
            "audit.log.1",
            "audit.log.12.gz",
        ] {
            assert!(looks_like_telemetry(Path::new(yes)), "{yes}");
        }
        for no in ["README.md", "rule.toml", "x.csv", "y.md.gz"] {
            assert!(!looks_like_telemetry(Path::new(no)), "{no}");
        }
    }
}
