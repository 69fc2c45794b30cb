//! Text leaving the program, neutralised: which characters act on a display instead of being
//! shown ([`is_display_control`]), and the one JSON writer every document unithunt writes for
//! others goes through ([`to_writer`] and its forms; [`write_json_str`] for hand-written JSON).
//!
//! serde_json escapes only what JSON requires (`"`, `\`, U+0000–U+001F). JSON allows every other
//! character raw, and some of them act on the terminal or viewer that shows the document: DEL
//! and the C1 controls (U+009B is an 8-bit CSI, as good as `ESC [` to many terminals), the
//! bidirectional controls (U+202E makes `cod.exe` show as `exe.doc`), and the line and paragraph
//! separators U+2028/U+2029 (line breaks to some viewers, string ends to JavaScript before
//! ES2019). The writer escapes them as `\uXXXX`: a JSON reader decodes the very same string,
//! and nothing on the way to it interprets them.

use serde::Serialize;
use serde_json::ser::{CompactFormatter, Formatter, PrettyFormatter};
use std::io::{self, Write};

/// Whether a terminal or viewer acts on `c` rather than showing it: control characters (C0,
/// DEL, C1), the bidirectional controls (the Unicode `Bidi_Control` property: U+061C, U+200E,
/// U+200F, U+202A–U+202E, U+2066–U+2069) and the line and paragraph separators (U+2028, U+2029).
pub fn is_display_control(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{061c}' | '\u{200e}' | '\u{200f}' | '\u{2028}'..='\u{202e}' | '\u{2066}'..='\u{2069}'
        )
}

/// Whether `b` may begin a display control that serde_json leaves raw: the UTF-8 lead bytes of
/// every [`is_display_control`] character from DEL up (0x7f, 0xc2, 0xd8, 0xe2): most strings
/// have none of these bytes and are copied as they are.
#[inline]
fn may_start_raw_control(b: u8) -> bool {
    (b == 0x7f) | (b == 0xc2) | (b == 0xd8) | (b == 0xe2)
}

/// Whether some byte of `b` satisfies [`may_start_raw_control`], by memchr's vector searches
/// (the fold above is not vectorised by the compiler: measured at ~15 instructions a byte on alert
/// JSON, against well under one here).
#[inline]
fn any_raw_control_lead(b: &[u8]) -> bool {
    // Short runs (between escapes, keys) cost less than setting up the vector searches.
    if b.len() < 32 {
        return b.iter().any(|&c| may_start_raw_control(c));
    }
    memchr::memchr3(0xc2, 0xd8, 0xe2, b).is_some() || memchr::memchr(0x7f, b).is_some()
}

/// Writes `fragment` (JSON string content that serde_json found nothing to escape in) with every
/// display control as `\uXXXX` (all of them are in the Basic Multilingual Plane).
fn write_neutral_fragment<W: ?Sized + Write>(out: &mut W, fragment: &str) -> io::Result<()> {
    if !any_raw_control_lead(fragment.as_bytes()) {
        return out.write_all(fragment.as_bytes());
    }
    let mut start = 0;
    for (i, c) in fragment.char_indices() {
        if is_display_control(c) {
            out.write_all(&fragment.as_bytes()[start..i])?;
            write!(out, "\\u{:04x}", c as u32)?;
            start = i + c.len_utf8();
        }
    }
    out.write_all(&fragment.as_bytes()[start..])
}

/// A serde_json formatter that lays JSON out like `F` and writes string contents through
/// [`write_neutral_fragment`]. Only the compact and pretty layouts are used: the methods they
/// differ in are passed to `F`, the others are serde_json's defaults, the same for both.
struct Neutral<F>(F);

impl<F: Formatter> Formatter for Neutral<F> {
    fn write_string_fragment<W: ?Sized + Write>(
        &mut self,
        writer: &mut W,
        fragment: &str,
    ) -> io::Result<()> {
        write_neutral_fragment(writer, fragment)
    }
    fn begin_array<W: ?Sized + Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.0.begin_array(w)
    }
    fn end_array<W: ?Sized + Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.0.end_array(w)
    }
    fn begin_array_value<W: ?Sized + Write>(&mut self, w: &mut W, first: bool) -> io::Result<()> {
        self.0.begin_array_value(w, first)
    }
    fn end_array_value<W: ?Sized + Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.0.end_array_value(w)
    }
    fn begin_object<W: ?Sized + Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.0.begin_object(w)
    }
    fn end_object<W: ?Sized + Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.0.end_object(w)
    }
    fn begin_object_key<W: ?Sized + Write>(&mut self, w: &mut W, first: bool) -> io::Result<()> {
        self.0.begin_object_key(w, first)
    }
    fn begin_object_value<W: ?Sized + Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.0.begin_object_value(w)
    }
    fn end_object_value<W: ?Sized + Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.0.end_object_value(w)
    }
}

/// Serialises `value` as compact JSON into `writer`, display controls escaped.
pub fn to_writer<W: Write, T: ?Sized + Serialize>(writer: W, value: &T) -> serde_json::Result<()> {
    value.serialize(&mut serde_json::Serializer::with_formatter(
        writer,
        Neutral(CompactFormatter),
    ))
}

/// [`to_writer`] into a new buffer.
pub fn to_vec<T: ?Sized + Serialize>(value: &T) -> serde_json::Result<Vec<u8>> {
    let mut out = Vec::with_capacity(128);
    to_writer(&mut out, value)?;
    Ok(out)
}

/// [`to_writer`] into a string.
pub fn to_string<T: ?Sized + Serialize>(value: &T) -> serde_json::Result<String> {
    // The serialiser writes whole UTF-8 strings and ASCII escapes only.
    to_vec(value).map(|v| String::from_utf8(v).expect("serde_json writes UTF-8"))
}

/// Indented JSON (two spaces, as serde_json's pretty printer), display controls escaped.
pub fn to_string_pretty<T: ?Sized + Serialize>(value: &T) -> serde_json::Result<String> {
    let mut out = Vec::with_capacity(256);
    value.serialize(&mut serde_json::Serializer::with_formatter(
        &mut out,
        Neutral(PrettyFormatter::new()),
    ))?;
    Ok(String::from_utf8(out).expect("serde_json writes UTF-8"))
}

/// Appends `s` as a JSON string literal, for JSON written by hand on hot paths (the converters'
/// documents): the same text [`to_writer`] writes for a string, faster for strings with nothing
/// to escape.
pub fn write_json_str(out: &mut Vec<u8>, s: &str) {
    let b = s.as_bytes();
    // Most strings need no escape: one branch-free pass (it vectorises) decides.
    let plain = !b.iter().fold(false, |bad, &c| {
        bad | (c < 0x20) | (c == b'"') | (c == b'\\') | may_start_raw_control(c)
    });
    if plain {
        out.push(b'"');
        out.extend_from_slice(b);
        out.push(b'"');
    } else {
        // Writing into a Vec cannot fail, and a `&str` serialises as a string.
        let _ = to_writer(&mut *out, s);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn c1_bidi_and_separators_are_escaped_and_read_back_the_same() {
        let s = "a\u{9b}31m\u{85}b\u{202e}cod.exe\u{2066}\u{2028}\u{2029}\u{61c}\u{200f}\u{7f}é✓";
        let doc = json!({ s: [s] });
        let text = to_string(&doc).unwrap();
        assert_eq!(
            text,
            format!(
                "{{\"{0}\":[\"{0}\"]}}",
                r"a\u009b31m\u0085b\u202ecod.exe\u2066\u2028\u2029\u061c\u200f\u007fé✓"
            )
        );
        assert!(!text.chars().any(is_display_control));
        assert_eq!(
            serde_json::from_str::<serde_json::Value>(&text).unwrap(),
            doc
        );
    }

    #[test]
    fn serde_json_escapes_stay_and_plain_text_is_copied() {
        let doc = json!({"k": "q\"\\\n\u{1b}[2J", "n": [1, 2.5, null, true], "plain": "/etc/x"});
        assert_eq!(
            to_string(&doc).unwrap(),
            serde_json::to_string(&doc).unwrap()
        );
    }

    #[test]
    fn pretty_output_is_laid_out_like_serde_json_and_escaped() {
        let doc = json!({"a": {"b": ["x\u{9b}"]}, "c": []});
        let pretty = to_string_pretty(&doc).unwrap();
        assert_eq!(
            pretty,
            serde_json::to_string_pretty(&doc)
                .unwrap()
                .replace('\u{9b}', r"\u009b")
        );
    }

    #[test]
    fn the_hand_written_string_writer_writes_what_serde_does() {
        for s in [
            "",
            "plain",
            "q\"b\\",
            "\u{0}\u{1f}\t",
            "\u{9b}",
            "x\u{202e}y",
            "é\u{2029}",
            "\u{7f}",
        ] {
            let mut out = Vec::new();
            write_json_str(&mut out, s);
            assert_eq!(
                String::from_utf8(out).unwrap(),
                to_string(s).unwrap(),
                "{s:?}"
            );
        }
    }

    #[test]
    fn the_vector_search_finds_exactly_the_lead_bytes() {
        for b in 0..=255u8 {
            for at in [0, 5, 31, 32, 63] {
                let mut text = vec![b'a'; if at < 31 { 20 } else { 64 }];
                let at = at.min(text.len() - 1);
                text[at] = b;
                assert_eq!(
                    any_raw_control_lead(&text),
                    may_start_raw_control(b),
                    "{b:#x}"
                );
            }
        }
    }

    #[test]
    fn every_display_control_past_c0_is_caught_by_its_lead_byte() {
        for c in (0x7f..0x1_0000)
            .filter_map(char::from_u32)
            .filter(|&c| is_display_control(c))
        {
            let mut utf8 = [0; 4];
            let encoded = c.encode_utf8(&mut utf8).as_bytes();
            assert!(may_start_raw_control(encoded[0]), "{c:?}");
            assert!(any_raw_control_lead(encoded), "{c:?}");
        }
    }

    #[test]
    fn display_controls_are_controls_bidi_and_separators_only() {
        for c in [
            '\u{1b}', '\u{7}', '\u{7f}', '\u{80}', '\u{9f}', '\u{202a}', '\u{2069}', '\u{2028}',
        ] {
            assert!(is_display_control(c), "{c:?}");
        }
        for c in [
            'a', ' ', 'é', '\u{a0}', '\u{2027}', '\u{2030}', '\u{2065}', '\u{206a}', '✓',
        ] {
            assert!(!is_display_control(c), "{c:?}");
        }
    }
}
