//! The help overlay (F1): the shortcuts, and how stepping, stepping back and KVM stepping work.
//! Teaches: what actually happens inside the VMM when a debugger button is pressed.

use egui::RichText;

use crate::app::VmscopeApp;

const SHORTCUTS: &[(&str, &str)] = &[
    ("F5", "run / pause"),
    ("F11", "step into: execute one instruction"),
    (
        "F10",
        "step over: a CALL, INT n or REP string instruction runs as one step, and so does \
         a hardware interrupt's handler if one arrives",
    ),
    (
        "Shift+F11",
        "step out: run until the current function returns",
    ),
    (
        "Ctrl+F10",
        "run to cursor (click a code line first; double-click also runs to it)",
    ),
    ("F7", "step back one instruction"),
    ("F9", "toggle a breakpoint at the cursor (or at RIP)"),
    (
        "Ctrl+S",
        "save a snapshot: the machine here as a file (a download in a browser); open it like an image",
    ),
    ("F1", "this help; Esc closes it"),
];

const HOW: &[(&str, &str)] = &[
    (
        "Booting through the firmware",
        "A Multiboot kernel starts at RESET by default (Guest menu: \"Boot through the \
         firmware\"; vmscope-gui --boot direct starts it in protected mode instead): CS:IP = \
         F000:FFF0, real mode, the first fetch from 0xFFFFFFF0 at the top of the ROM. vmscope's \
         boot ROM (guests/asm/firmware.S) jumps into its copy below 1 MiB, loads a GDT, sets \
         CR0.PE, far-jumps to flat 32-bit code, loads flat data segments and jumps to the \
         kernel with EAX = 0x2BADB002 and EBX = the Multiboot information. Tick \"mode \
         switch\" in the Breakpoints tab and F5 stops at each step of the journey into long mode.",
    ),
    (
        "Stepping on the interpreter",
        "Every instruction is one call of Engine::step: fetch through the software MMU, decode \
         with iced-x86, execute in plain Rust, then check for interrupts. Between two steps \
         the debugger compares the counters (Stats) and the registers: orange values are what \
         the last step changed, and the events tab shows what the machine did.",
    ),
    (
        "The binary translator (bt)",
        "Run (F5) on bt executes translated blocks: the first time a guest block is reached it \
         is decoded once into a list of pre-decoded operations (flags computed only where a \
         later instruction can see them; I/O, control registers and other sensitive \
         instructions call into the interpreter), stored in a translation cache and, once \
         found again, linked straight to the block that follows. A single step (F11) on bt \
         is one instruction through the interpreter path, so stepping looks exactly like on \
         interp; so is a run with breakpoints or watchpoints, which checks after every \
         instruction. bt retires the same instructions at the same virtual times as interp, \
         so step back works after bt ran. Memory writes made on bt are highlighted in the \
         memory view as on interp (the translator records them too). The Stats tab shows the \
         translator's counters: blocks translated, chain links, cache use and flushes.",
    ),
    (
        "Stepping under KVM",
        "KVM runs the guest on the real CPU, so it cannot stop \"between instructions\" by \
         itself. vmscope asks KVM to single-step (KVM_SET_GUEST_DEBUG with \
         KVM_GUESTDBG_SINGLESTEP): the host sets the trap flag for the guest, every \
         instruction ends in a Debug exit, and the CPU state comes back into the same \
         CpuState the interpreter uses. Each step is a full VM exit (tens of µs under PVM, \
         where ring-0 code is interpreted by the host kernel), so with breakpoints set, \
         running under KVM is slow; without them KVM runs freely in slices that end at I/O \
         exits. Breakpoints and watchpoints are checked by vmscope between single steps, \
         not with hardware debug registers, so they behave the same on both engines.",
    ),
    (
        "Switching engines",
        "While paused, pick interp, bt or kvm: the CPU state, RAM and devices stay where \
         they are and the other engine continues from the same instruction. The interpreter \
         forgets its cached decodes and shadow page tables, and bt starts with an empty \
         translation cache, because the engine that ran in between wrote memory — code and \
         page tables — they did not see.",
    ),
    (
        "Step back",
        "The interpreter (and bt, which runs the same instructions at the same virtual \
         times) is deterministic: virtual time advances 1 ns per instruction and \
         devices read only that clock. So the state after n instructions depends only on an \
         earlier state and on what was typed since (and when). Every 1,000,000 instructions \
         the debugger snapshots the whole machine — CPU, RAM, every device and the clock — and \
         keeps the last 64. Step back restores the newest snapshot before instruction n - 1 \
         (or boots afresh if there is none) and re-executes up to it; the CPU states recorded \
         at every stop check that the replay matches. \
         After KVM has run, the past depends on the host clock and cannot be replayed.",
    ),
    (
        "Snapshot files",
        "Save snapshot (Ctrl+S) pauses the guest and writes the whole machine — CPU state, \
         counters, RAM as its non-zero pages, every device and the virtual clock — in the \
         format `vmscope run --save` writes: a META section that says how to rebuild the \
         machine, then one checksummed, deflated section per part. `vmscope restore FILE \
         --engine interp|bt|kvm` continues it on any engine, because engines keep no state \
         outside CpuState. Opening the file here (the Guest menu's Open image file…, or a drop) \
         builds the same board, restores it and pauses at the saved instruction; step back \
         goes no further back than that. Machines with disks are not saved from the GUI \
         (their contents are files outside the machine), and snapshots of machines with \
         devices the GUI does not attach are refused with the reason.",
    ),
    (
        "Page walk",
        "The right-hand panel explains how an address translates under the current CR0, CR3, \
         CR4 and EFER: each paging-structure entry read, its bits, the permission rules and \
         the result or the exact #PF. Click a code line, a memory byte or a stack slot to \
         explain its address; the explanation has no side effects (no accessed bits set).",
    ),
    (
        "Breakpoints on interrupt handlers",
        "Delivering an interrupt or exception and executing the handler's first instruction \
         happen in one step of the engine, so the debugger is never 'before' a handler's first \
         instruction. It notices the delivery and stops just after a breakpointed handler \
         entry instead, and says so.",
    ),
    (
        "Watchpoints",
        "Before each instruction the debugger decodes it and computes the linear addresses of \
         its memory operands (iced-x86 instruction info + the registers); the run stops after \
         an instruction that reads or writes a watched range.",
    ),
];

pub fn window(ctx: &egui::Context, app: &mut VmscopeApp) {
    let mut open = app.help_open;
    egui::Window::new("Help: vmscope stepping debugger")
        .open(&mut open)
        .collapsible(false)
        .default_width(640.0)
        .max_width(680.0)
        .anchor(egui::Align2::CENTER_CENTER, egui::Vec2::ZERO)
        .show(ctx, |ui| {
            egui::ScrollArea::vertical()
                .max_height(520.0)
                .show(ui, |ui| {
                    egui::Grid::new("shortcuts").num_columns(2).show(ui, |ui| {
                        for (k, what) in SHORTCUTS {
                            ui.label(RichText::new(*k).monospace().strong());
                            ui.add(egui::Label::new(*what).wrap());
                            ui.end_row();
                        }
                    });
                    match &app.kvm {
                        Ok(flavour) => ui.label(format!("This host's KVM: {flavour}.")),
                        Err(why) => ui.label(format!("KVM is not available here: {why}.")),
                    };
                    for (title, text) in HOW {
                        ui.add_space(6.0);
                        ui.label(RichText::new(*title).strong());
                        ui.label(*text);
                    }
                });
        });
    app.help_open = open;
}
