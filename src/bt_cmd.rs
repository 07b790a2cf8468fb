//! `vmscope bt show`: run a guest on the binary translator, then print the block at RIP.
//! Teaches: what a translated block is — guest instructions beside the operations they became.

use anyhow::{Context, Result};
use clap::Subcommand;
use emulator::bt::BinaryTranslator;
use emulator::machine::loader::BootMethod;
use emulator::{Engine, Exit, Machine, RunLimit};

use crate::image::{read_image, FormatArg, ImageFormat};

/// `vmscope bt …`
#[derive(Subcommand, Debug)]
pub enum BtCommand {
    /// Run IMAGE on `bt` for N instructions, then show the translated block that starts at RIP
    /// (its guest instructions, the op each became, which flags are computed, its chain links).
    Show {
        /// Path to the image, or the name of a built-in guest.
        image: String,
        /// Guest instructions to run first.
        #[arg(long, default_value_t = 0)]
        after: u64,
        /// Multiboot command line.
        #[arg(long, default_value = "")]
        cmdline: String,
        /// Print the translator's counters too.
        #[arg(long)]
        stats: bool,
        #[command(flatten)]
        format: FormatArg,
    },
}

/// Runs a `bt` subcommand; returns the process exit status.
pub fn run(command: BtCommand) -> Result<i32> {
    match command {
        BtCommand::Show {
            image,
            after,
            cmdline,
            stats,
            format,
        } => {
            let text = show(&image, format.format, after, &cmdline, stats)?;
            print!("{text}");
            Ok(0)
        }
    }
}

/// The text `vmscope bt show` prints.
pub fn show(
    image: &str,
    format: ImageFormat,
    after: u64,
    cmdline: &str,
    stats: bool,
) -> Result<String> {
    let (name, bytes) = read_image(Some(image))?;
    let mut machine = Machine::new(64 << 20).context("creating the machine")?;
    crate::image::load(
        &mut machine,
        &name,
        &bytes,
        cmdline,
        BootMethod::Direct,
        format,
    )?;
    let mut bt = BinaryTranslator::new(crate::engines::bt_cache_bytes());
    let exit = bt.run(&mut machine, RunLimit::instructions(after))?;
    let mut out = String::new();
    if exit != Exit::LimitReached {
        out.push_str(&format!(
            "note: the guest stopped before {after} instructions ({})\n",
            crate::runner::exit_summary(&exit)
        ));
    }
    let state = &machine.cpu;
    out.push_str(&format!(
        "after {} instructions: {}, CPL {}, rip {:#x}\n",
        machine.stats.instructions,
        state.mode(),
        state.cpl(),
        state.rip
    ));
    match bt.show_current_block(&mut machine) {
        Some(text) => out.push_str(&text),
        None => out.push_str(
            "no block here: the instruction at RIP straddles a page, lies in MMIO or faults on \
             fetch, so the interpreter runs it\n",
        ),
    }
    if stats {
        out.push_str(&machine.stats.report(&machine.bus.stats));
        if let Some(report) = bt.report() {
            out.push_str(&report);
            out.push('\n');
        }
    }
    Ok(out)
}
