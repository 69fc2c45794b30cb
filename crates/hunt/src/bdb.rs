//! The values of a Berkeley DB hash database, read from its pages: what RPM's `Packages` file is
//! on RHEL/CentOS 7 and 8 and their kin (one package header per value). Written here because no
//! maintained Rust crate reads Berkeley DB files (the C library is AGPL since version 6 and is not
//! on these images' analysts' machines); only what a read-only walk of a hash database needs is
//! implemented, and every offset is checked against the page (an image is hostile).
//!
//! Layout (Berkeley DB 4.x–5.x, `dbinc/db_page.h`): page 0 is the hash metadata page (magic
//! 0x061561 at offset 12, page size at 20, last page number at 32; the magic's byte order is the
//! file's). Every other page starts with a 26-byte header (next page at 16, entry count at 20,
//! `hf_offset` at 22, page type at 25) followed by the entries' offsets (2 bytes each). Hash pages
//! (types 2 and 13) hold key/value pairs: an item is `H_KEYDATA` (1: the bytes follow its type
//! byte, up to the previous item) or `H_OFFPAGE` (3: page number at +4, total length at +8, the
//! bytes on a chain of overflow pages of type 7, `hf_offset` bytes each, after their header).

const HASH_MAGIC: u32 = 0x0006_1561;
const PAGE_HEADER: usize = 26;
const P_HASH_UNSORTED: u8 = 2;
const P_OVERFLOW: u8 = 7;
const P_HASHMETA: u8 = 8;
const P_HASH: u8 = 13;
const H_KEYDATA: u8 = 1;
const H_OFFPAGE: u8 = 3;

struct Pages<'a> {
    bytes: &'a [u8],
    size: usize,
    big_endian: bool,
}

impl<'a> Pages<'a> {
    fn page(&self, n: u32) -> Option<&'a [u8]> {
        let start = (n as usize).checked_mul(self.size)?;
        self.bytes.get(start..start.checked_add(self.size)?)
    }

    fn u16_at(&self, b: &[u8], at: usize) -> Option<usize> {
        let v: [u8; 2] = b.get(at..at + 2)?.try_into().ok()?;
        Some(if self.big_endian {
            u16::from_be_bytes(v)
        } else {
            u16::from_le_bytes(v)
        } as usize)
    }

    fn u32_at(&self, b: &[u8], at: usize) -> Option<u32> {
        let v: [u8; 4] = b.get(at..at + 4)?.try_into().ok()?;
        Some(if self.big_endian {
            u32::from_be_bytes(v)
        } else {
            u32::from_le_bytes(v)
        })
    }

    /// The bytes of an off-page item: `len` bytes along the overflow chain from page `first`.
    fn overflow(&self, first: u32, len: usize) -> Result<Vec<u8>, String> {
        let mut out = Vec::with_capacity(len.min(64 << 20));
        let mut n = first;
        // Each page once: a chain that comes back to a page loops.
        let mut seen = vec![false; self.bytes.len() / self.size];
        while out.len() < len {
            match seen.get_mut(n as usize) {
                Some(s) if n != 0 && !*s => *s = true,
                _ => {
                    return Err(format!(
                        "overflow chain from page {first} ends early or loops"
                    ))
                }
            }
            let p = self
                .page(n)
                .ok_or_else(|| format!("overflow page {n} past the end of the file"))?;
            if p[25] != P_OVERFLOW {
                return Err(format!("page {n} is not an overflow page (type {})", p[25]));
            }
            let used = self.u16_at(p, 22).unwrap_or(0);
            let data = p
                .get(PAGE_HEADER..PAGE_HEADER + used)
                .ok_or_else(|| format!("overflow page {n} claims {used} bytes"))?;
            out.extend_from_slice(data);
            n = self.u32_at(p, 16).unwrap_or(0);
        }
        out.truncate(len);
        Ok(out)
    }
}

/// Every value of the hash database in `bytes`, in page order; a damaged item is reported, not
/// fatal (the others are still read).
pub fn hash_values(bytes: &[u8]) -> Result<(Vec<Vec<u8>>, Vec<String>), String> {
    let magic_le = bytes
        .get(12..16)
        .map(|b| u32::from_le_bytes(b.try_into().expect("4 bytes")))
        .ok_or("shorter than a Berkeley DB metadata page")?;
    let big_endian = match magic_le {
        HASH_MAGIC => false,
        m if m.swap_bytes() == HASH_MAGIC => true,
        _ => return Err("not a Berkeley DB hash database (no hash magic)".into()),
    };
    let mut pages = Pages {
        bytes,
        size: 0,
        big_endian,
    };
    let size = pages.u32_at(bytes, 20).unwrap_or(0) as usize;
    if !(512..=65536).contains(&size) || !size.is_power_of_two() {
        return Err(format!("page size {size} is not a Berkeley DB page size"));
    }
    if bytes.get(25) != Some(&P_HASHMETA) {
        return Err("page 0 is not a hash metadata page".into());
    }
    pages.size = size;
    let count = bytes.len() / size;
    let mut values = Vec::new();
    let mut problems = Vec::new();
    for n in 1..count as u32 {
        let Some(p) = pages.page(n) else { break };
        if p[25] != P_HASH && p[25] != P_HASH_UNSORTED {
            continue;
        }
        let entries = pages.u16_at(p, 20).unwrap_or(0);
        // Items pair up: key at even indexes, value at odd ones.
        for i in (1..entries).step_by(2) {
            let Some(at) = pages.u16_at(p, PAGE_HEADER + 2 * i) else {
                problems.push(format!("page {n}: entry {i} past the page"));
                break;
            };
            // An item runs up to the previous item's start (items fill the page from its end).
            let end = pages
                .u16_at(p, PAGE_HEADER + 2 * (i - 1))
                .unwrap_or(size)
                .min(size);
            let Some(&kind) = p.get(at) else {
                problems.push(format!("page {n}: entry {i} at {at} past the page"));
                continue;
            };
            match kind {
                H_KEYDATA => match p.get(at + 1..end) {
                    Some(v) => values.push(v.to_vec()),
                    None => problems.push(format!("page {n}: entry {i} has bad bounds")),
                },
                H_OFFPAGE => {
                    let first = pages.u32_at(p, at + 4).unwrap_or(0);
                    let len = pages.u32_at(p, at + 8).unwrap_or(0) as usize;
                    match pages.overflow(first, len) {
                        Ok(v) => values.push(v),
                        Err(e) => problems.push(format!("page {n}: entry {i}: {e}")),
                    }
                }
                other => problems.push(format!("page {n}: entry {i} of item type {other}")),
            }
        }
    }
    Ok((values, problems))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A little-endian database by hand: metadata page, one hash page with an inline pair and an
    /// off-page pair, and the overflow pages of the latter.
    fn sample(size: usize) -> Vec<u8> {
        let mut db = vec![0u8; size * 4];
        db[12..16].copy_from_slice(&HASH_MAGIC.to_le_bytes());
        db[20..24].copy_from_slice(&(size as u32).to_le_bytes());
        db[25] = P_HASHMETA;
        let p = size;
        db[p + 25] = P_HASH;
        db[p + 20..p + 22].copy_from_slice(&4u16.to_le_bytes());
        // Items from the page's end: key 1 (5 bytes), value "hello" (6), key 2 (5), off-page (12).
        let items: [(usize, Vec<u8>); 4] = [
            (size - 5, vec![H_KEYDATA, 1, 0, 0, 0]),
            (size - 11, [vec![H_KEYDATA], b"hello".to_vec()].concat()),
            (size - 16, vec![H_KEYDATA, 2, 0, 0, 0]),
            (size - 28, {
                let mut v = vec![H_OFFPAGE, 0, 0, 0];
                v.extend_from_slice(&2u32.to_le_bytes());
                v.extend_from_slice(&((size - PAGE_HEADER + 10) as u32).to_le_bytes());
                v
            }),
        ];
        for (i, (at, bytes)) in items.iter().enumerate() {
            db[p + PAGE_HEADER + 2 * i..p + PAGE_HEADER + 2 * i + 2]
                .copy_from_slice(&(*at as u16).to_le_bytes());
            db[p + at..p + at + bytes.len()].copy_from_slice(bytes);
        }
        // Overflow: page 2 full of 'a', then page 3 with ten 'b'.
        for (n, fill, used, next) in [(2, b'a', size - PAGE_HEADER, 3u32), (3, b'b', 10, 0)] {
            let o = n * size;
            db[o + 25] = P_OVERFLOW;
            db[o + 16..o + 20].copy_from_slice(&next.to_le_bytes());
            db[o + 22..o + 24].copy_from_slice(&(used as u16).to_le_bytes());
            db[o + PAGE_HEADER..o + PAGE_HEADER + used].fill(fill);
        }
        db
    }

    #[test]
    fn inline_and_off_page_values_are_read() {
        let size = 512;
        let (values, problems) = hash_values(&sample(size)).unwrap();
        assert!(problems.is_empty(), "{problems:?}");
        assert_eq!(values.len(), 2);
        assert_eq!(values[0], b"hello");
        assert_eq!(values[1].len(), size - PAGE_HEADER + 10);
        assert!(values[1].ends_with(b"bbbbbbbbbb"));
    }

    #[test]
    fn damaged_databases_are_errors_or_problems_never_panics() {
        let good = sample(512);
        assert!(hash_values(&good[..10]).is_err());
        assert!(hash_values(&[0u8; 4096]).is_err());
        for n in 0..good.len() {
            let mut bad = good.clone();
            bad[n] ^= 0xff;
            let _ = hash_values(&bad);
            let _ = hash_values(&good[..n]);
        }
        // An overflow chain that loops on itself.
        let mut looped = good.clone();
        looped[3 * 512 + 16..3 * 512 + 20].copy_from_slice(&3u32.to_le_bytes());
        looped[3 * 512 + 22..3 * 512 + 24].copy_from_slice(&1u16.to_le_bytes());
        let (values, problems) = hash_values(&looped).unwrap();
        assert_eq!(values.len(), 1);
        assert!(problems[0].contains("loops"), "{problems:?}");
    }
}
