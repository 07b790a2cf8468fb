//! Sizes on the command line: "64M", "1G", "65536".
//! Teaches: nothing deep — one parser, so every option spells sizes the same way.

/// Guest RAM: a size between 1M and 64G.
pub fn parse_memory_size(s: &str) -> Result<u64, String> {
    let bytes = parse_any_size(s)?;
    if !(1 << 20..=64 << 30).contains(&bytes) {
        return Err(format!(
            "{}: guest RAM must be between 1M and 64G",
            s.trim()
        ));
    }
    Ok(bytes)
}

/// "64M", "1G", "65536" → bytes.
pub fn parse_any_size(s: &str) -> Result<u64, String> {
    let s = s.trim();
    let (num, mult) = match s.char_indices().last() {
        Some((i, 'K' | 'k')) => (&s[..i], 1u64 << 10),
        Some((i, 'M' | 'm')) => (&s[..i], 1 << 20),
        Some((i, 'G' | 'g')) => (&s[..i], 1 << 30),
        _ => (s, 1),
    };
    let n: u64 = num
        .parse()
        .map_err(|_| format!("not a size: {s:?} (try 64M)"))?;
    n.checked_mul(mult)
        .ok_or_else(|| "size too large".to_string())
}
