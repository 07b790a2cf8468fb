//! A difference found by `vmscope fuzz`, as a file: the minimal code, its mode, the engines, and how to replay it.
//! Teaches: a bug report a machine can re-run is worth more than a description of one.
//!
//! A finding is JSON (`finding-<mode>-<seed>-<case>.json`) next to the raw code
//! (`….bin`, to disassemble with `objdump -D -b binary -m i386`), and replays with
//! `vmscope fuzz --replay FILE`.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};

use super::compare::{compare, Verdict};
use super::gen::Case;
use super::run::{EngineKind, Runner};
use super::Mode;

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Finding {
    pub mode: Mode,
    /// The two engines that disagree (the first is the reference).
    pub engines: [EngineKind; 2],
    /// The case's code (hex), without the end marker the harness appends.
    pub code: String,
    /// The instruction limit of the run.
    pub limit: u64,
    pub seed: u64,
    pub case: u64,
    /// The differences, as the comparison printed them.
    pub differences: Vec<String>,
    /// The code's length before shrinking.
    pub original_len: usize,
}

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

pub fn unhex(s: &str) -> Result<Vec<u8>> {
    let s: String = s.chars().filter(|c| !c.is_whitespace()).collect();
    if !s.len().is_multiple_of(2) {
        anyhow::bail!("odd number of hex digits");
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).context("not a hex byte"))
        .collect()
}

impl Finding {
    pub fn case_code(&self) -> Result<Case> {
        Ok(Case::from_bytes(self.mode, &unhex(&self.code)?))
    }

    pub fn file_stem(&self) -> String {
        format!("finding-{}-{}-{}", self.mode, self.seed, self.case)
    }

    /// The command that replays the file at `path`.
    pub fn replay_command(path: &Path) -> String {
        format!("vmscope fuzz --replay {}", path.display())
    }

    /// The command that found it (the batch, with the same seed and at least as many cases).
    pub fn found_by(&self) -> String {
        format!(
            "vmscope fuzz --mode {} --seed {} --cases {} --engines {},{}",
            self.mode,
            self.seed,
            self.case + 1,
            self.engines[0].name(),
            self.engines[1].name()
        )
    }

    /// Writes the JSON and the raw code into `dir`; returns the JSON's path.
    pub fn write(&self, dir: &Path) -> Result<PathBuf> {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        let path = dir.join(format!("{}.json", self.file_stem()));
        let text = serde_json::to_string_pretty(self)?;
        std::fs::write(&path, text + "\n")
            .with_context(|| format!("writing {}", path.display()))?;
        let bin = dir.join(format!("{}.bin", self.file_stem()));
        std::fs::write(&bin, unhex(&self.code)?)
            .with_context(|| format!("writing {}", bin.display()))?;
        Ok(path)
    }

    pub fn read(path: &Path) -> Result<Finding> {
        let text =
            std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        serde_json::from_str(&text)
            .with_context(|| format!("{}: not a vmscope fuzz finding", path.display()))
    }

    /// Runs the finding's code on its two engines again.
    pub fn replay(&self) -> Result<Verdict> {
        let case = self.case_code()?;
        let mut a = Runner::new(self.engines[0], self.mode)?;
        let mut b = Runner::new(self.engines[1], self.mode)?;
        let x = a.run(&case, self.limit);
        let y = b.run_after(&case, self.limit, Some(&x));
        Ok(compare(&case, self.limit, &x, &y))
    }
}
