//! The book's structure: includes name real anchors, links resolve, every chapter has its parts,
//! and the rendered HTML holds the debugger's real screenshots.
//! Teaches: mdbook itself accepts a missing anchor or a broken link silently; this test does not.

mod book_support;

use std::collections::BTreeSet;
use std::fs;
use std::path::Path;
use std::process::Command;

use book_support::*;

/// Chapters that are not concept chapters (no experiment or exercise required).
const FRAME_PAGES: &[&str] = &["SUMMARY.md", "introduction.md", "how-to-read.md", "next.md"];

fn file_name(path: &Path) -> String {
    path.file_name().unwrap().to_string_lossy().into_owned()
}

#[test]
fn every_include_names_an_existing_file_and_anchor() {
    let mut problems = Vec::new();
    let mut count = 0;
    for (path, text) in chapters() {
        let dir = path.parent().unwrap();
        for (line, target, anchor) in includes(&text) {
            count += 1;
            let at = format!("{}:{line}", shown(&path));
            let file = dir.join(&target);
            let Ok(source) = fs::read_to_string(&file) else {
                problems.push(format!("{at}: {{{{#include {target}}}}}: no such file"));
                continue;
            };
            let Some(anchor) = anchor else { continue };
            if anchor.chars().next().is_some_and(|c| c.is_ascii_digit()) {
                problems.push(format!(
                    "{at}: {target}:{anchor}: include by ANCHOR, not by line numbers (they drift)"
                ));
                continue;
            }
            let has = |marker: &str| {
                source.lines().any(|l| {
                    l.split_once(marker)
                        .is_some_and(|(_, name)| name.trim() == anchor)
                })
            };
            if !has("ANCHOR:") || !has("ANCHOR_END:") {
                problems.push(format!(
                    "{at}: {target} has no `ANCHOR: {anchor}` … `ANCHOR_END: {anchor}` pair"
                ));
            }
        }
    }
    assert!(count >= 10, "only {count} includes in the book");
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn every_relative_link_and_image_resolves() {
    let chapters = chapters();
    let mut problems = Vec::new();
    for (path, text) in &chapters {
        let dir = path.parent().unwrap();
        for (line, target) in link_targets(text) {
            let at = format!("{}:{line}", shown(path));
            if target.is_empty()
                || target.starts_with("http://")
                || target.starts_with("https://")
                || target.starts_with("mailto:")
            {
                continue;
            }
            let (file, fragment) = match target.split_once('#') {
                Some((f, frag)) => (f, Some(frag)),
                None => (target.as_str(), None),
            };
            let resolved = if file.is_empty() {
                path.clone()
            } else {
                dir.join(file)
            };
            if !resolved.exists() {
                problems.push(format!(
                    "{at}: link to {target}: {} does not exist",
                    resolved.display()
                ));
                continue;
            }
            if let Some(fragment) = fragment {
                if resolved.extension().is_some_and(|x| x == "md") {
                    let target_text = fs::read_to_string(&resolved).unwrap();
                    if !heading_ids(&target_text).iter().any(|id| id == fragment) {
                        problems.push(format!(
                            "{at}: link to {target}: no heading with id `{fragment}`"
                        ));
                    }
                }
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn the_summary_lists_every_chapter_and_nothing_else() {
    let summary = fs::read_to_string(book_src().join("SUMMARY.md")).unwrap();
    let listed: BTreeSet<String> = link_targets(&summary).into_iter().map(|(_, t)| t).collect();
    let present: BTreeSet<String> = chapters()
        .iter()
        .map(|(p, _)| p.strip_prefix(book_src()).unwrap().display().to_string())
        // Files in subdirectories (`generated/`) are fragments other chapters include.
        .filter(|p| p != "SUMMARY.md" && !p.contains('/'))
        .collect();
    assert_eq!(
        listed, present,
        "SUMMARY.md (left) vs the .md files in book/src (right)"
    );
}

#[test]
fn every_concept_chapter_has_a_diagram_code_an_experiment_and_an_exercise() {
    let mut problems = Vec::new();
    for (path, text) in chapters() {
        let name = file_name(&path);
        if FRAME_PAGES.contains(&name.as_str()) || path.parent().unwrap() != book_src() {
            continue;
        }
        let at = shown(&path);
        if !link_targets(&text).iter().any(|(_, t)| t.ends_with(".svg")) {
            problems.push(format!("{at}: no diagram (an .svg image)"));
        }
        if !includes(&text).iter().any(|(_, _, a)| a.is_some()) {
            problems.push(format!("{at}: no code included by anchor"));
        }
        if !text.contains("```console") {
            problems.push(format!("{at}: no experiment (```console block)"));
        }
        if !text.contains("## Exercise") || !text.contains("<details>") {
            problems.push(format!("{at}: no exercise with a <details> solution"));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

/// Renders the book into a temporary directory (when mdbook is installed) and checks that the
/// debugger chapter shows every GUI snapshot, byte for byte the PNG the GUI test renders.
#[test]
fn the_rendered_debugger_chapter_shows_the_gui_snapshots() {
    let version = Command::new("mdbook").arg("--version").output();
    if !version.is_ok_and(|o| o.status.success()) {
        eprintln!("skipped: mdbook is not installed (./scripts/setup.sh installs it)");
        return;
    }
    let out = std::env::temp_dir().join(format!("vmscope-book-html-{}", std::process::id()));
    let built = Command::new("mdbook")
        .arg("build")
        .arg(root().join("book"))
        .arg("-d")
        .arg(&out)
        .output()
        .expect("mdbook build");
    assert!(
        built.status.success(),
        "mdbook build failed:\n{}",
        String::from_utf8_lossy(&built.stderr)
    );
    let html = fs::read_to_string(out.join("debugger.html")).expect("debugger.html");
    let snapshots = root().join("gui/tests/snapshots");
    let mut shown_count = 0;
    for entry in fs::read_dir(&snapshots).unwrap() {
        let png = entry.unwrap().path();
        if png.extension().is_none_or(|x| x != "png") {
            continue;
        }
        let name = file_name(&png);
        let src = format!("screenshots/{name}");
        if !html.contains(&format!("src=\"{src}\"")) {
            continue;
        }
        shown_count += 1;
        let copied = fs::read(out.join(&src))
            .unwrap_or_else(|e| panic!("{src} not in the HTML output: {e}"));
        assert_eq!(
            copied,
            fs::read(&png).unwrap(),
            "{src} differs from {}",
            png.display()
        );
    }
    let _ = fs::remove_dir_all(&out);
    assert!(
        shown_count >= 5,
        "the debugger chapter shows {shown_count} snapshots"
    );
}
