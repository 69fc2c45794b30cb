//! Archives read as the files they hold: tar (plain, gzip or zstd) and zip, recognised by their
//! content, never by a guess from the name. Each regular member becomes an [`Input`] named
//! `archive:member`, so line numbers in reports point into the member. What an archive holds
//! that is not read (links, devices, nested archives, members over the size cap) is said, with
//! the reason; members are read one at a time into memory under [`MAX_MEMBER_BYTES`], and a
//! whole archive is cut at [`MAX_ARCHIVE_BYTES`] decompressed (a bomb ends, said, not the host).

use crate::format::Format;
use crate::input::Input;
use std::io::{self, Read};
use std::path::Path;

/// A member larger than this (decompressed) is not read: extract it and scan the file.
pub const MAX_MEMBER_BYTES: u64 = 256 << 20;
/// An archive's members are read up to this many bytes in all (decompressed).
pub const MAX_ARCHIVE_BYTES: u64 = 64 << 30;
/// At most this many members are looked at.
pub const MAX_MEMBERS: usize = 100_000;

/// The bounds an archive is read under (the constants above; smaller in tests).
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    pub member_bytes: u64,
    pub archive_bytes: u64,
    pub members: usize,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            member_bytes: MAX_MEMBER_BYTES,
            archive_bytes: MAX_ARCHIVE_BYTES,
            members: MAX_MEMBERS,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ArchiveKind {
    Tar,
    TarGz,
    TarZst,
    Zip,
}

impl ArchiveKind {
    pub fn name(self) -> &'static str {
        match self {
            ArchiveKind::Tar => "tar",
            ArchiveKind::TarGz => "tar.gz",
            ArchiveKind::TarZst => "tar.zst",
            ArchiveKind::Zip => "zip",
        }
    }
}

const GZIP: &[u8] = &[0x1f, 0x8b];
const ZSTD: &[u8] = &[0x28, 0xb5, 0x2f, 0xfd];
const ZIP: &[u8] = b"PK\x03\x04";
const ZIP_EMPTY: &[u8] = b"PK\x05\x06";

/// A tar header: `ustar` at offset 257 (POSIX and GNU).
fn is_tar(head: &[u8]) -> bool {
    head.len() >= 262 && &head[257..262] == b"ustar"
}

/// Up to `n` bytes of a reader.
fn head_of(r: impl Read, n: u64) -> Vec<u8> {
    let mut v = Vec::new();
    let _ = r.take(n).read_to_end(&mut v);
    v
}

/// What kind of archive `path` is, by its first bytes (decompressed when gzip or zstd); `None`:
/// not an archive (a plain or compressed log is read as one).
pub fn archive_kind(path: &Path) -> io::Result<Option<ArchiveKind>> {
    let file = std::fs::File::open(path)?;
    if !file.metadata()?.is_file() {
        return Ok(None);
    }
    let head = head_of(&file, 512);
    Ok(if head.starts_with(ZIP) || head.starts_with(ZIP_EMPTY) {
        Some(ArchiveKind::Zip)
    } else if head.starts_with(GZIP) {
        let inner = head_of(
            flate2::read::MultiGzDecoder::new(std::fs::File::open(path)?),
            512,
        );
        is_tar(&inner).then_some(ArchiveKind::TarGz)
    } else if head.starts_with(ZSTD) {
        let inner = match zstd::stream::read::Decoder::new(std::fs::File::open(path)?) {
            Ok(d) => head_of(d, 512),
            Err(_) => Vec::new(),
        };
        is_tar(&inner).then_some(ArchiveKind::TarZst)
    } else {
        is_tar(&head).then_some(ArchiveKind::Tar)
    })
}

/// What reading an archive met besides its members.
#[derive(Debug, Default)]
pub struct ArchiveReport {
    /// Members read.
    pub read: usize,
    /// `member: reason` of what was not read.
    pub skipped: Vec<String>,
}

/// One archive being read: where members go, and what reading them has used of the bounds.
struct Reading<'f> {
    archive: String,
    format: Option<Format>,
    limits: Limits,
    total: u64,
    report: ArchiveReport,
    f: &'f mut dyn FnMut(io::Result<Input>),
}

impl Reading<'_> {
    /// Says `member: why` of something not read.
    fn skip(&mut self, what: String) {
        self.report.skipped.push(what);
    }

    /// Reads one member (at most `limits.member_bytes`) and hands it on as an input; `false`
    /// when the archive's total is spent and reading stops.
    fn member(&mut self, name: &str, size: u64, r: &mut dyn Read) -> io::Result<bool> {
        let cap = self.limits.member_bytes;
        // The size a header claims may lie (or a zip member may inflate past it): the read is
        // capped too.
        if size > cap {
            self.skip(format!(
                "{name}: {size} bytes, over the {cap} bytes a member may have (extract the archive and scan the file)"
            ));
            return Ok(true);
        }
        let mut data = Vec::with_capacity(size.min(cap) as usize);
        r.take(cap + 1).read_to_end(&mut data)?;
        if data.len() as u64 > cap {
            self.skip(format!(
                "{name}: more than {cap} bytes once decompressed (extract the archive and scan the file)"
            ));
            return Ok(true);
        }
        self.total += data.len() as u64;
        if self.total > self.limits.archive_bytes {
            self.skip(format!(
                "{name} and what follows: the archive holds more than {} bytes decompressed; the rest is not read",
                self.limits.archive_bytes
            ));
            return Ok(false);
        }
        // A member that is itself an archive is not opened (said, not guessed at).
        if data.starts_with(ZIP) || is_tar(&data) {
            self.skip(format!(
                "{name}: an archive inside the archive (extract it and scan it)"
            ));
            return Ok(true);
        }
        self.report.read += 1;
        (self.f)(Input::from_bytes(
            &format!("{}:{name}", self.archive),
            data,
            self.format,
        ));
        Ok(true)
    }

    /// Whether member `i` is past the count bound (said once, then reading stops).
    fn past_count(&mut self, i: usize) -> bool {
        if i < self.limits.members {
            return false;
        }
        let n = self.limits.members;
        self.skip(format!("members after the first {n}: not read"));
        true
    }
}

/// Hands every regular member of the archive at `path` to `f`, in archive order.
pub fn for_each_member(
    path: &Path,
    kind: ArchiveKind,
    format: Option<Format>,
    f: &mut dyn FnMut(io::Result<Input>),
) -> io::Result<ArchiveReport> {
    for_each_member_within(path, kind, format, Limits::default(), f)
}

/// [`for_each_member`] under given bounds.
pub fn for_each_member_within(
    path: &Path,
    kind: ArchiveKind,
    format: Option<Format>,
    limits: Limits,
    f: &mut dyn FnMut(io::Result<Input>),
) -> io::Result<ArchiveReport> {
    let file = std::fs::File::open(path)?;
    let mut reading = Reading {
        archive: path.to_string_lossy().into_owned(),
        format,
        limits,
        total: 0,
        report: ArchiveReport::default(),
        f,
    };
    if kind == ArchiveKind::Zip {
        let mut zip = zip::ZipArchive::new(file).map_err(io::Error::other)?;
        for i in 0..zip.len() {
            if reading.past_count(i) {
                break;
            }
            let mut m = zip.by_index(i).map_err(io::Error::other)?;
            let name = match m.name() {
                Ok(n) => n.into_owned(),
                Err(_) => String::from_utf8_lossy(m.name_raw()).into_owned(),
            };
            if m.is_dir() {
                continue;
            }
            if !m.is_file() {
                reading.skip(format!("{name}: not a regular file"));
                continue;
            }
            let size = m.size();
            if !reading.member(&name, size, &mut m)? {
                break;
            }
        }
        return Ok(reading.report);
    }
    let reader: Box<dyn Read> = match kind {
        ArchiveKind::TarGz => Box::new(flate2::read::MultiGzDecoder::new(file)),
        ArchiveKind::TarZst => Box::new(zstd::stream::read::Decoder::new(file)?),
        _ => Box::new(file),
    };
    let mut tar = tar::Archive::new(reader);
    for (i, entry) in tar.entries()?.enumerate() {
        if reading.past_count(i) {
            break;
        }
        let mut entry = entry?;
        let name = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
        let t = entry.header().entry_type();
        if t.is_dir()
            || t.is_gnu_longname()
            || t.is_pax_global_extensions()
            || t.is_pax_local_extensions()
        {
            continue;
        }
        if !t.is_file() {
            let what = if t.is_symlink() || t.is_hard_link() {
                "a link (not followed)"
            } else {
                "not a regular file"
            };
            reading.skip(format!("{name}: {what}"));
            continue;
        }
        let size = entry.size();
        if !reading.member(&name, size, &mut entry)? {
            break;
        }
    }
    Ok(reading.report)
}

/// Opens `path` as the inputs it holds: an archive's members, or the file itself.
pub fn open_inputs(
    path: &Path,
    format: Option<Format>,
    block: usize,
    f: &mut dyn FnMut(io::Result<Input>),
) -> io::Result<Option<ArchiveReport>> {
    if path.as_os_str() != "-" {
        if let Some(kind) = archive_kind(path)? {
            return for_each_member(path, kind, format, f).map(Some);
        }
    }
    f(Input::open(path, format, block));
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tar_of(members: &[(&str, &[u8])]) -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        for (name, data) in members {
            let mut h = tar::Header::new_gnu();
            h.set_size(data.len() as u64);
            h.set_mode(0o644);
            h.set_cksum();
            b.append_data(&mut h, name, *data).unwrap();
        }
        b.into_inner().unwrap()
    }

    #[test]
    fn tar_gz_and_zip_members_become_inputs_and_the_rest_is_said() {
        let dir = std::env::temp_dir().join(format!("unithunt-archive-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let ecs = br#"{"@timestamp": 1, "event": {"category": "process"}}
"#;
        let inner_tar = tar_of(&[("x.ndjson", ecs)]);
        let tar = tar_of(&[("a/one.ndjson", ecs), ("b/inner.tar", &inner_tar)]);
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        std::io::Write::write_all(&mut gz, &tar).unwrap();
        let p = dir.join("logs.tgz");
        std::fs::write(&p, gz.finish().unwrap()).unwrap();
        assert_eq!(archive_kind(&p).unwrap(), Some(ArchiveKind::TarGz));
        let mut names = Vec::new();
        let report = for_each_member(&p, ArchiveKind::TarGz, None, &mut |i| {
            let i = i.unwrap();
            names.push((i.name().to_string(), i.format));
        })
        .unwrap();
        assert_eq!(names.len(), 1);
        assert!(names[0].0.ends_with("logs.tgz:a/one.ndjson"), "{names:?}");
        assert_eq!(names[0].1, Format::Ecs);
        assert_eq!(report.skipped.len(), 1);
        assert!(
            report.skipped[0].contains("b/inner.tar: an archive inside"),
            "{report:?}"
        );
        // A zip with the same member.
        let mut z = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
        z.start_file("c.ndjson", zip::write::SimpleFileOptions::default())
            .unwrap();
        std::io::Write::write_all(&mut z, ecs).unwrap();
        let zp = dir.join("logs.zip");
        std::fs::write(&zp, z.finish().unwrap().into_inner()).unwrap();
        assert_eq!(archive_kind(&zp).unwrap(), Some(ArchiveKind::Zip));
        let mut n = 0;
        for_each_member(&zp, ArchiveKind::Zip, None, &mut |i| {
            assert!(i.unwrap().name().ends_with("logs.zip:c.ndjson"));
            n += 1;
        })
        .unwrap();
        assert_eq!(n, 1);
        // A gzip log is not an archive: it is read as one input.
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        std::io::Write::write_all(&mut gz, ecs).unwrap();
        let lp = dir.join("audit.log.gz");
        std::fs::write(&lp, gz.finish().unwrap()).unwrap();
        assert_eq!(archive_kind(&lp).unwrap(), None);
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// A crafted archive: members past the size cap (also when the header understates it),
    /// past the archive's total, past the member count: each said, none read, nothing else
    /// grows.
    #[test]
    fn archives_are_read_within_bounds_and_what_is_cut_is_said() {
        let dir = std::env::temp_dir().join(format!("unithunt-archive-b-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let line = b"{\"@timestamp\": 1}\n";
        let big = line.repeat(200);
        let tar = tar_of(&[
            ("a", line),
            ("big", &big),
            ("b", line),
            ("c", line),
            ("d", line),
        ]);
        let p = dir.join("t.tar");
        std::fs::write(&p, tar).unwrap();
        let limits = Limits {
            member_bytes: 1000,
            archive_bytes: 3 * line.len() as u64,
            members: 4,
        };
        let mut read = Vec::new();
        let r = for_each_member_within(&p, ArchiveKind::Tar, None, limits, &mut |i| {
            read.push(i.unwrap().name().to_string())
        })
        .unwrap();
        assert_eq!(read.len(), 3, "{read:?}");
        assert!(
            r.skipped[0].starts_with("big: 3600 bytes, over the 1000"),
            "{r:?}"
        );
        assert!(
            r.skipped.iter().any(|s| s.contains("after the first 4")),
            "{r:?}"
        );
        // The total decompressed: the member that passes it, and the rest, are not read.
        let total = Limits {
            members: 10,
            archive_bytes: 2 * line.len() as u64,
            ..limits
        };
        let mut n = 0;
        let r = for_each_member_within(&p, ArchiveKind::Tar, None, total, &mut |_| n += 1).unwrap();
        assert_eq!(n, 2);
        assert!(
            r.skipped
                .iter()
                .any(|s| s.starts_with("c and what follows")),
            "{r:?}"
        );
        // A zip member whose header understates what it inflates to.
        let mut z = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
        z.start_file("bomb", zip::write::SimpleFileOptions::default())
            .unwrap();
        std::io::Write::write_all(&mut z, &vec![b'{'; 5000]).unwrap();
        let zp = dir.join("z.zip");
        std::fs::write(&zp, z.finish().unwrap().into_inner()).unwrap();
        let r = for_each_member_within(&zp, ArchiveKind::Zip, None, limits, &mut |_| {
            panic!("not read")
        })
        .unwrap();
        assert!(r.skipped[0].contains("bomb"), "{r:?}");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
