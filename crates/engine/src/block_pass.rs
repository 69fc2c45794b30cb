//! One pass over a block of NDJSON that learns everything the screen needs besides the literals.
//!
//! Reading a block from memory is what a scan with few relevant events costs, so the screen reads
//! it once: this pass writes the ASCII-lowercased copy the literal search runs on, counts newlines
//! (the accounting needs line counts), checks that every newline sits between `}` and `{` (then
//! every line is one JSON object shape, and lines no rule wants need no further look), and notes
//! the 64-byte chunks holding a non-ASCII byte or a backslash (the only places where JSON can spell
//! a literal otherwise). Written by hand because no crate fuses these; plain loops that LLVM
//! vectorises, compiled twice: for the baseline target and, picked at run time, for AVX2.

/// Chunk granularity of [`BlockPass::suspicious_chunks`].
pub const CHUNK: usize = 64;

/// What the pass learned about a block.
#[derive(Debug, Default)]
pub struct BlockPass {
    /// Number of `\n` bytes in the block.
    pub newlines: usize,
    /// True when the block is non-empty, starts with `{`, ends with `}` or `}\n`, and every other
    /// `\n` has `}` just before and `{` just after: every line is shaped like one JSON object.
    pub framed: bool,
    /// Indices of 64-byte chunks holding a byte ≥ 0x80 or a `\`.
    pub suspicious_chunks: Vec<usize>,
}

/// Sub-block length: the pass hands over the folded text in pieces this size, so the literal
/// search reads them while they are still in the core's cache.
pub const SUB_BLOCK: usize = 64 << 10;

/// Lowercases `text` (ASCII only) into `lower` (same length) and returns what the pass learned.
/// After each sub-block, `visit(lower, end)` is called: `lower[..end]` is then folded.
pub fn fold_block(text: &[u8], lower: &mut [u8], mut visit: impl FnMut(&[u8], usize)) -> BlockPass {
    assert_eq!(text.len(), lower.len());
    let n = text.len();
    if n == 0 {
        return BlockPass::default();
    }
    #[cfg(target_arch = "x86_64")]
    let avx2 = std::arch::is_x86_feature_detected!("avx2");
    // Both ends first (they see only one neighbour), then the interior, sub-block by sub-block.
    lower[0] = text[0].to_ascii_lowercase();
    lower[n - 1] = text[n - 1].to_ascii_lowercase();
    let mut pass = BlockPass {
        framed: true,
        ..BlockPass::default()
    };
    let mut from = 1;
    loop {
        let to = (from + SUB_BLOCK).min(n - 1).max(from);
        #[cfg(target_arch = "x86_64")]
        let part = if avx2 && to > from {
            // SAFETY: the CPU supports AVX2, checked above.
            unsafe { fold_range_avx2(text, lower, from, to) }
        } else {
            fold_range(text, lower, from, to)
        };
        #[cfg(not(target_arch = "x86_64"))]
        let part = fold_range(text, lower, from, to);
        pass.newlines += part.newlines;
        pass.framed &= part.framed;
        pass.suspicious_chunks.extend(part.suspicious_chunks);
        let done = to >= n - 1;
        visit(lower, if done { n } else { to });
        if done {
            break;
        }
        from = to;
    }
    let irregular = !pass.framed;
    finish(text, pass, irregular)
}

/// [`fold_range`] 32 bytes per step with explicit AVX2 intrinsics (the autovectorised loop widens
/// its counters and runs 8 bytes per step); the remainder goes to [`fold_range`].
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,popcnt")]
fn fold_range_avx2(text: &[u8], lower: &mut [u8], from: usize, to: usize) -> BlockPass {
    use std::arch::x86_64::*;
    const W: usize = 32;
    let n = text.len();
    assert!(from >= 1 && to < n);
    let mut pass = BlockPass::default();
    let mut unframed = 0u32;
    let mut p = from;
    let src = text.as_ptr();
    let dst = lower.as_mut_ptr();
    // SAFETY: every load reads text[p-1 .. p+33] and every store writes lower[p .. p+32]: in
    // bounds because 1 <= from <= p and p + 32 <= to < n; loads and stores are unaligned.
    unsafe {
        let upper_bias = _mm256_set1_epi8((0x80u8.wrapping_sub(b'A')) as i8);
        let upper_limit = _mm256_set1_epi8(-128 + 26);
        let case_bit = _mm256_set1_epi8(0x20);
        let newline = _mm256_set1_epi8(b'\n' as i8);
        let backslash = _mm256_set1_epi8(b'\\' as i8);
        let close = _mm256_set1_epi8(b'}' as i8);
        let open = _mm256_set1_epi8(b'{' as i8);
        let mut last_chunk = usize::MAX;
        while p + W <= to {
            let v = _mm256_loadu_si256(src.add(p) as *const __m256i);
            let before = _mm256_loadu_si256(src.add(p - 1) as *const __m256i);
            let after = _mm256_loadu_si256(src.add(p + 1) as *const __m256i);
            let is_upper = _mm256_cmpgt_epi8(upper_limit, _mm256_add_epi8(v, upper_bias));
            let folded = _mm256_or_si256(v, _mm256_and_si256(is_upper, case_bit));
            _mm256_storeu_si256(dst.add(p) as *mut __m256i, folded);
            let nl = _mm256_movemask_epi8(_mm256_cmpeq_epi8(v, newline)) as u32;
            pass.newlines += nl.count_ones() as usize;
            let framed = _mm256_and_si256(
                _mm256_cmpeq_epi8(before, close),
                _mm256_cmpeq_epi8(after, open),
            );
            unframed |= nl & !(_mm256_movemask_epi8(framed) as u32);
            let odd = _mm256_movemask_epi8(v) as u32
                | _mm256_movemask_epi8(_mm256_cmpeq_epi8(v, backslash)) as u32;
            if odd != 0 {
                // Bit j stands for position p+j; the vector may straddle two chunks.
                let split = CHUNK - p % CHUNK;
                let low = if split >= W {
                    u32::MAX
                } else {
                    (1u32 << split) - 1
                };
                for (chunk, bits) in [(p / CHUNK, odd & low), ((p + W - 1) / CHUNK, odd & !low)] {
                    if bits != 0 && chunk != last_chunk {
                        pass.suspicious_chunks.push(chunk);
                        last_chunk = chunk;
                    }
                }
            }
            p += W;
        }
    }
    let rest = fold_range(text, lower, p, to);
    pass.newlines += rest.newlines;
    pass.suspicious_chunks.extend(rest.suspicious_chunks);
    pass.framed = unframed == 0 && rest.framed;
    pass
}

#[cfg(test)]
fn fold_block_generic(text: &[u8], lower: &mut [u8]) -> BlockPass {
    let n = text.len();
    if n == 0 {
        return BlockPass::default();
    }
    lower[0] = text[0].to_ascii_lowercase();
    lower[n - 1] = text[n - 1].to_ascii_lowercase();
    let pass = fold_range(text, lower, 1, n);
    let irregular = !pass.framed;
    finish(text, pass, irregular)
}

/// The interior positions of `from..to` (those with a byte on each side). `framed` in the result
/// means no newline of the range breaks the framing; ends of the block are left to [`finish`].
fn fold_range(text: &[u8], lower: &mut [u8], from: usize, to: usize) -> BlockPass {
    let n = text.len();
    let mut pass = BlockPass {
        framed: true,
        ..BlockPass::default()
    };
    let to = to.min(n.saturating_sub(1));
    let from = from.max(1);
    let mut pos = from;
    while pos < to {
        let end = ((pos / CHUNK + 1) * CHUNK).min(to);
        let mut odd = false;
        for i in pos..end {
            let b = text[i];
            lower[i] = b.to_ascii_lowercase();
            odd |= b >= 0x80 || b == b'\\';
            if b == b'\n' {
                pass.newlines += 1;
                pass.framed &= text[i - 1] == b'}' && text[i + 1] == b'{';
            }
        }
        if odd {
            pass.suspicious_chunks.push(pos / CHUNK);
        }
        pos = end;
    }
    pass
}

/// Adds the block's first and last byte to an interior pass and decides the framing.
fn finish(text: &[u8], mut pass: BlockPass, irregular: bool) -> BlockPass {
    let n = text.len();
    for i in [0, n - 1] {
        let b = text[i];
        if b >= 0x80 || b == b'\\' {
            pass.suspicious_chunks.push(i / CHUNK);
        }
    }
    if n > 1 && text[n - 1] == b'\n' {
        pass.newlines += 1;
    }
    if text[0] == b'\n' {
        pass.newlines += 1;
    }
    pass.suspicious_chunks.sort_unstable();
    pass.suspicious_chunks.dedup();
    let ends_well = matches!(text, [.., b'}', b'\n'] | [.., b'}']);
    pass.framed = !irregular && text[0] == b'{' && ends_well;
    pass
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(text: &[u8]) -> (Vec<u8>, BlockPass) {
        let mut lower = vec![0; text.len()];
        let mut visited = 0;
        let pass = fold_block(text, &mut lower, |l, end| {
            assert!(end > visited || text.len() <= 1);
            assert_eq!(l[..end], text[..end].to_ascii_lowercase());
            visited = end;
        });
        assert_eq!(visited, text.len());
        let mut lower2 = vec![0; text.len()];
        let generic = fold_block_generic(text, &mut lower2);
        assert_eq!(lower, lower2);
        assert_eq!(pass.newlines, generic.newlines);
        assert_eq!(pass.framed, generic.framed);
        assert_eq!(pass.suspicious_chunks, generic.suspicious_chunks);
        (lower, pass)
    }

    fn reference(text: &[u8]) -> BlockPass {
        let newlines = text.iter().filter(|&&b| b == b'\n').count();
        let body = text.strip_suffix(b"\n").unwrap_or(text);
        let framed = !text.is_empty()
            && body
                .split(|&b| b == b'\n')
                .all(|l| l.first() == Some(&b'{') && l.last() == Some(&b'}'));
        let mut suspicious: Vec<usize> = text
            .iter()
            .enumerate()
            .filter(|(_, &b)| b >= 0x80 || b == b'\\')
            .map(|(i, _)| i / CHUNK)
            .collect();
        suspicious.dedup();
        BlockPass {
            newlines,
            framed,
            suspicious_chunks: suspicious,
        }
    }

    #[test]
    fn agrees_with_a_plain_reading_on_many_shapes() {
        let mut seed = 0x9e3779b97f4a7c15u64;
        let alphabet: &[u8] = b"{}\n\\aZ\xc3\xa9 x\"";
        for len in 0..300 {
            for _ in 0..20 {
                let text: Vec<u8> = (0..len)
                    .map(|_| {
                        seed ^= seed << 13;
                        seed ^= seed >> 7;
                        seed ^= seed << 17;
                        alphabet[(seed % alphabet.len() as u64) as usize]
                    })
                    .collect();
                let (lower, pass) = run(&text);
                let want = reference(&text);
                assert_eq!(lower, text.to_ascii_lowercase(), "{text:?}");
                assert_eq!(pass.newlines, want.newlines, "{text:?}");
                assert_eq!(pass.framed, want.framed, "{text:?}");
                assert_eq!(pass.suspicious_chunks, want.suspicious_chunks, "{text:?}");
            }
        }
    }

    #[test]
    fn ndjson_blocks_are_framed() {
        let (_, p) = run(b"{\"a\":1}\n{\"B\":2}\n");
        assert!(p.framed);
        assert_eq!(p.newlines, 2);
        let (_, p) = run(b"{\"a\":1}\n{\"B\":2}");
        assert!(p.framed);
        assert_eq!(p.newlines, 1);
        for text in [
            &b"{\"a\":1}\r\n{\"B\":2}\r\n"[..],
            b"{\"a\":1}\n\n{\"B\":2}\n",
            b" {\"a\":1}\n",
            b"[1]\n",
            b"\n",
            b"}",
        ] {
            assert!(!run(text).1.framed, "{text:?}");
        }
    }
}
