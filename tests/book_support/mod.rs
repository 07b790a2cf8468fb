//! Reads the book's Markdown for the book tests: chapters, experiment blocks, includes, links.
//! Teaches: how a book can be kept true — every command it shows is data a test can run.
#![allow(dead_code)]

use std::fs;
use std::path::{Path, PathBuf};

/// The project root (the root package's manifest directory).
pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// `book/src`.
pub fn book_src() -> PathBuf {
    root().join("book").join("src")
}

/// Every Markdown file under `book/src`, sorted, with its text.
pub fn chapters() -> Vec<(PathBuf, String)> {
    let mut out = Vec::new();
    let mut dirs = vec![book_src()];
    while let Some(dir) = dirs.pop() {
        let entries = fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
        for entry in entries {
            let path = entry.expect("directory entry").path();
            if path.is_dir() && !path.is_symlink() {
                dirs.push(path);
            } else if path.extension().is_some_and(|x| x == "md") {
                let text =
                    fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
                out.push((path, text));
            }
        }
    }
    out.sort();
    out
}

/// A chapter's path as the messages show it (`book/src/memory.md`).
pub fn shown(path: &Path) -> String {
    path.strip_prefix(root())
        .unwrap_or(path)
        .display()
        .to_string()
}

/// One command of an experiment and the output the book prints for it.
#[derive(Debug, Clone)]
pub struct Command {
    /// The book line of the `$ ` line (1-based).
    pub line: usize,
    /// The arguments after `vmscope`.
    pub args: Vec<String>,
    /// `2>&1` at the end: standard error is merged into the compared output.
    pub merge_stderr: bool,
    /// Expected lines, each with its book line.
    pub expected: Vec<(usize, String)>,
    /// A following `$ echo $?` block: the exit status the book shows.
    pub status: Option<(usize, i32)>,
}

/// A ```console block.
#[derive(Debug, Clone)]
pub struct Experiment {
    pub file: PathBuf,
    /// The book line of the opening fence.
    pub line: usize,
    /// Marked ```console kvm: needs a usable /dev/kvm.
    pub kvm: bool,
    pub commands: Vec<Command>,
}

/// Finds the ```console blocks of a chapter. A malformed block is an error naming its line.
pub fn experiments(file: &Path, text: &str) -> Result<Vec<Experiment>, String> {
    let lines: Vec<&str> = text.lines().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        let fence = lines[i].trim_start();
        let Some(info) = fence.strip_prefix("```") else {
            i += 1;
            continue;
        };
        let words: Vec<&str> = info.split_whitespace().collect();
        let start = i;
        let end = (i + 1..lines.len())
            .find(|&j| lines[j].trim_start().starts_with("```"))
            .ok_or_else(|| format!("{}:{}: unclosed code block", shown(file), i + 1))?;
        i = end + 1;
        if words.first() != Some(&"console") {
            continue;
        }
        let kvm = words[1..].contains(&"kvm");
        if let Some(other) = words[1..].iter().find(|w| **w != "kvm") {
            return Err(format!(
                "{}:{}: unknown mark `{other}` on a console block (only `kvm`)",
                shown(file),
                start + 1
            ));
        }
        let mut commands: Vec<Command> = Vec::new();
        let mut expect_status = false;
        for (j, &raw) in lines.iter().enumerate().take(end).skip(start + 1) {
            let book_line = j + 1;
            if let Some(cmd) = raw.strip_prefix("$ ") {
                let cmd = cmd.trim();
                if cmd == "echo $?" {
                    if commands.is_empty() {
                        return Err(format!(
                            "{}:{book_line}: `echo $?` before any command",
                            shown(file)
                        ));
                    }
                    expect_status = true;
                    continue;
                }
                let Some(rest) = cmd.strip_prefix("vmscope ") else {
                    return Err(format!(
                        "{}:{book_line}: an experiment runs `$ vmscope ARGS` (or `$ echo $?`), not `{cmd}`",
                        shown(file)
                    ));
                };
                let (rest, merge_stderr) = match rest.trim_end().strip_suffix("2>&1") {
                    Some(r) => (r, true),
                    None => (rest, false),
                };
                let args =
                    split_shell(rest).map_err(|e| format!("{}:{book_line}: {e}", shown(file)))?;
                commands.push(Command {
                    line: book_line,
                    args,
                    merge_stderr,
                    expected: Vec::new(),
                    status: None,
                });
                expect_status = false;
                continue;
            }
            let Some(current) = commands.last_mut() else {
                return Err(format!(
                    "{}:{book_line}: a console block starts with `$ vmscope ARGS`",
                    shown(file)
                ));
            };
            if expect_status {
                let status = raw.trim().parse().map_err(|_| {
                    format!(
                        "{}:{book_line}: `echo $?` is followed by a number",
                        shown(file)
                    )
                })?;
                current.status = Some((book_line, status));
                expect_status = false;
            } else if current.status.is_some() {
                return Err(format!(
                    "{}:{book_line}: output after `echo $?`'s number",
                    shown(file)
                ));
            } else {
                current.expected.push((book_line, raw.to_string()));
            }
        }
        if commands.is_empty() {
            return Err(format!(
                "{}:{}: an empty console block",
                shown(file),
                start + 1
            ));
        }
        out.push(Experiment {
            file: file.to_path_buf(),
            line: start + 1,
            kvm,
            commands,
        });
    }
    Ok(out)
}

/// Splits a command line as a POSIX shell would for plain words: whitespace separates,
/// '…' quotes literally, "…" quotes with \" and \\ escapes, a backslash escapes one character.
pub fn split_shell(s: &str) -> Result<Vec<String>, String> {
    let mut words = Vec::new();
    let mut word = String::new();
    let mut in_word = false;
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        match c {
            c if c.is_whitespace() => {
                if in_word {
                    words.push(std::mem::take(&mut word));
                    in_word = false;
                }
            }
            '\'' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some('\'') => break,
                        Some(c) => word.push(c),
                        None => return Err(format!("unclosed ' in `{s}`")),
                    }
                }
            }
            '"' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some('"') => break,
                        Some('\\') => match chars.next() {
                            Some(c @ ('"' | '\\' | '$' | '`')) => word.push(c),
                            Some(c) => {
                                word.push('\\');
                                word.push(c);
                            }
                            None => return Err(format!("unclosed \" in `{s}`")),
                        },
                        Some(c) => word.push(c),
                        None => return Err(format!("unclosed \" in `{s}`")),
                    }
                }
            }
            '\\' => {
                in_word = true;
                word.push(
                    chars
                        .next()
                        .ok_or_else(|| format!("trailing \\ in `{s}`"))?,
                );
            }
            '|' | '>' | '<' | ';' | '&' | '*' | '?' | '$' | '`' => {
                return Err(format!(
                    "`{c}` in `{s}`: experiments run vmscope directly, without a shell (quote it)"
                ))
            }
            c => {
                in_word = true;
                word.push(c);
            }
        }
    }
    if in_word {
        words.push(word);
    }
    Ok(words)
}

/// Does one output line match one expected line? `[..]` in the expected line matches any
/// text (possibly empty) within the line; trailing whitespace is ignored on both sides.
pub fn line_matches(expected: &str, actual: &str) -> bool {
    let (expected, actual) = (expected.trim_end(), actual.trim_end());
    let pieces: Vec<&str> = expected.split("[..]").collect();
    if pieces.len() == 1 {
        return expected == actual;
    }
    let (first, last) = (pieces[0], pieces[pieces.len() - 1]);
    if !actual.starts_with(first) || actual.len() < first.len() + last.len() {
        return false;
    }
    let mut rest = &actual[first.len()..];
    for piece in &pieces[1..pieces.len() - 1] {
        match rest.find(piece) {
            Some(at) => rest = &rest[at + piece.len()..],
            None => return false,
        }
    }
    rest.ends_with(last)
}

/// Matches output lines against expected lines, where an expected line `...` matches any
/// number of lines (none included). On a mismatch: the furthest expected line any attempt
/// reached, and the first output line it was tried against (for the diff).
pub fn lines_match(expected: &[&str], actual: &[&str]) -> Result<(), (usize, usize)> {
    let mut furthest = (0, usize::MAX);
    if matches_from(expected, actual, 0, 0, &mut furthest) {
        Ok(())
    } else {
        Err((furthest.0, furthest.1.min(actual.len())))
    }
}

fn matches_from(e: &[&str], a: &[&str], i: usize, j: usize, furthest: &mut (usize, usize)) -> bool {
    if i > furthest.0 || furthest.1 == usize::MAX {
        *furthest = (i, j);
    } else if i == furthest.0 && j < furthest.1 {
        furthest.1 = j;
    }
    if i == e.len() {
        return j == a.len();
    }
    if e[i].trim() == "..." {
        return (j..=a.len()).any(|k| matches_from(e, a, i + 1, k, furthest));
    }
    j < a.len() && line_matches(e[i], a[j]) && matches_from(e, a, i + 1, j + 1, furthest)
}

/// Every `{{#include PATH}}` / `{{#include PATH:ANCHOR}}` outside inline code, with its line.
/// A backslash before the braces (`\{{#include`) is mdbook's escape and is skipped.
pub fn includes(text: &str) -> Vec<(usize, String, Option<String>)> {
    let mut out = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let mut rest = line;
        while let Some(at) = rest.find("{{#include ") {
            let escaped = rest[..at].ends_with('\\');
            let after = &rest[at + "{{#include ".len()..];
            let Some(close) = after.find("}}") else { break };
            if !escaped {
                let spec = after[..close].trim();
                let (path, anchor) = match spec.split_once(':') {
                    Some((p, a)) => (p.to_string(), Some(a.to_string())),
                    None => (spec.to_string(), None),
                };
                out.push((n + 1, path, anchor));
            }
            rest = &after[close..];
        }
    }
    out
}

/// The lines of a chapter that are prose (outside fenced code), inline code spans blanked.
pub fn prose_lines(text: &str) -> Vec<(usize, String)> {
    let mut out = Vec::new();
    let mut in_fence = false;
    for (n, line) in text.lines().enumerate() {
        if line.trim_start().starts_with("```") {
            in_fence = !in_fence;
            continue;
        }
        if in_fence {
            continue;
        }
        let mut clean = String::new();
        let mut in_code = false;
        for c in line.chars() {
            if c == '`' {
                in_code = !in_code;
                clean.push(' ');
            } else {
                clean.push(if in_code { ' ' } else { c });
            }
        }
        out.push((n + 1, clean));
    }
    out
}

/// Link and image targets in prose: `](target)` and `src="target"`, with their lines.
pub fn link_targets(text: &str) -> Vec<(usize, String)> {
    let mut out = Vec::new();
    for (n, line) in prose_lines(text) {
        let mut rest = line.as_str();
        while let Some(at) = rest.find("](") {
            let after = &rest[at + 2..];
            let Some(close) = after.find(')') else { break };
            let target = after[..close].split_whitespace().next().unwrap_or("");
            out.push((n, target.to_string()));
            rest = &after[close..];
        }
        let mut rest = line.as_str();
        while let Some(at) = rest.find("src=\"") {
            let after = &rest[at + 5..];
            let Some(close) = after.find('"') else { break };
            out.push((n, after[..close].to_string()));
            rest = &after[close..];
        }
    }
    out
}

/// The ids mdbook gives a chapter's headings: the heading's text in lower case, spaces to
/// `-`, other punctuation dropped; a repeated id gets `-1`, `-2`, ….
pub fn heading_ids(text: &str) -> Vec<String> {
    let mut ids: Vec<String> = Vec::new();
    let mut bases: Vec<String> = Vec::new();
    let mut in_fence = false;
    for line in text.lines() {
        let t = line.trim_start();
        if t.starts_with("```") {
            in_fence = !in_fence;
            continue;
        }
        if in_fence || !t.starts_with('#') {
            continue;
        }
        let title = t.trim_start_matches('#').trim();
        let base: String = title
            .chars()
            .filter_map(|c| {
                if c.is_alphanumeric() || c == '_' || c == '-' {
                    Some(c.to_ascii_lowercase())
                } else if c.is_whitespace() {
                    Some('-')
                } else {
                    None
                }
            })
            .collect();
        let seen = bases.iter().filter(|b| **b == base).count();
        ids.push(if seen == 0 {
            base.clone()
        } else {
            format!("{base}-{seen}")
        });
        bases.push(base);
    }
    ids
}
