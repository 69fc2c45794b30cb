//! The one driver of the formats read a line at a time (LAUREL, Sysmon, Defender rows): line
//! numbering, blank, comment and over-long lines, and the accounting of a converted block.

use crate::doc::Doc;
use crate::{pooled_buffer, Block, Converted, Skipped};

/// A format whose lines are converted one at a time.
pub(crate) trait LineConverter {
    /// One source line, without its newline and trimmed of surrounding whitespace (never blank,
    /// never a `#` comment): an ECS document, nothing (a line of the format's framing, such as a
    /// CSV header), or why it was skipped.
    fn line(&mut self, line: &[u8]) -> Result<Option<Doc>, String>;

    /// One source line to the ECS documents it holds (one, as [`LineConverter::line`] gives,
    /// unless the format packs several events in a line). An error after some documents were
    /// written says what of the line was not read.
    fn line_docs(&mut self, line: &[u8], out: &mut Vec<u8>) -> Result<(), String> {
        if let Some(doc) = self.line(line)? {
            doc.write_json(out);
            out.push(b'\n');
        }
        Ok(())
    }
}

/// Converts a block of whole lines through `c`. `lines` counts the lines of the file so far (the
/// converter's own counter, reset at the end of each file).
pub(crate) fn convert_lines(c: &mut impl LineConverter, lines: &mut u64, raw: &Block) -> Block {
    let first = *lines;
    let mut out = pooled_buffer();
    let mut skipped = crate::oversized_skips(raw, lines, first);
    for line in raw.data.split_inclusive(|&b| b == b'\n') {
        *lines += 1;
        let line = line.trim_ascii();
        let result = if line.is_empty() {
            Err("blank line".to_string())
        } else if crate::format::is_comment(line) {
            Err(crate::format::COMMENT.to_string())
        } else {
            c.line_docs(line, &mut out)
        };
        match result {
            Ok(()) => {}
            Err(reason) => skipped.push(Skipped {
                file: raw.file.to_string(),
                line: *lines - first - 1,
                reason,
            }),
        }
    }
    Block::from_converted(
        raw.file.clone(),
        out,
        raw.offset,
        Converted {
            lines: *lines - first,
            skipped,
            ..Converted::default()
        },
    )
}
