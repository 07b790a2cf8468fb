//! sieve32, the CPU-speed benchmark guest, with `rounds=N` on every engine and on the CLI.
//! Teaches: a benchmark is only worth timing once every engine is shown to compute the same
//! answer from the same command line — and the work it does grows exactly with its input.

mod support;

use emulator::Exit;
use support::*;
use vmscope::{EngineChoice, RunOptions};

fn with_cmdline(engine: EngineChoice, cmdline: &str) -> RunOptions {
    RunOptions {
        cmdline: cmdline.to_string(),
        ..opts(engine)
    }
}

/// On a PVM host this takes ~15 s: PVM runs guest ring 0 in the host kernel's instruction
/// emulator (about 2 million instructions a second), and sieve32 is all ring 0.
#[test]
fn sieve32_with_two_rounds_counts_the_primes_below_2_to_the_20_on_every_engine() {
    let g = guests::by_name("sieve32").expect("sieve32 is built in");
    let mut counted = Vec::new();
    for engine in engines_with_kvm() {
        let (outcome, serial) = run_builtin("sieve32", with_cmdline(engine, "rounds=2"));
        assert_eq!(
            serial, "sieve32: 82025 primes below 1048576, 2 rounds\n",
            "{engine:?}"
        );
        assert_eq!(serial, guests::sieve32_text(2));
        assert!(
            matches!(outcome.exit, Exit::DebugExit { value: 0x10, .. }),
            "{engine:?}: {:?}",
            outcome.exit
        );
        assert_eq!(outcome.status, expected_status(g), "{engine:?}");
        assert_eq!(outcome.status, 33);
        if engine != EngineChoice::Kvm {
            counted.push(outcome.machine.stats.instructions);
        }
    }
    assert_eq!(
        counted[0], counted[1],
        "bt retires exactly the interpreter's instructions"
    );
}

#[test]
fn each_round_costs_the_same_number_of_instructions_whatever_else_the_command_line_says() {
    let count = |rounds: u32| {
        let cmdline = format!("quiet rounds={rounds} tail");
        let (outcome, serial) =
            run_builtin("sieve32", with_cmdline(EngineChoice::Interp, &cmdline));
        assert_eq!(serial, guests::sieve32_text(rounds));
        outcome.machine.stats.instructions
    };
    let interp = [2, 3, 4].map(count);
    // (From 2 rounds up: the last line then always says "rounds", so only the rounds differ.)
    let per_round = interp[1] - interp[0];
    assert_eq!(
        interp[2] - interp[1],
        per_round,
        "every round does the same work"
    );
    // ~2.2 million multiples crossed out (4 instructions each) + 2^18 four-byte clears.
    assert!(
        (9_000_000..11_000_000).contains(&per_round),
        "{per_round} instructions per round"
    );
}

#[test]
fn the_cli_passes_rounds_and_reports_a_malformed_count() {
    let out = vmscope(&[
        "run",
        "sieve32",
        "--cmdline",
        "rounds=2",
        "--engine",
        "interp",
    ]);
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        guests::sieve32_text(2)
    );
    assert_eq!(out.status.code(), Some(33));
    let bad = guests::qemu_exit_status(guests::exit::SIEVE_BAD_ROUNDS) as i32;
    for cmdline in ["rounds=0", "rounds=", "rounds=2x", "rounds=1000001"] {
        let out = vmscope(&["run", "sieve32", "--cmdline", cmdline, "--engine", "interp"]);
        assert_eq!(
            String::from_utf8_lossy(&out.stdout),
            "sieve32: rounds= needs a number from 1 to 1000000\n",
            "{cmdline}"
        );
        assert_eq!(out.status.code(), Some(bad), "{cmdline}");
    }
}
