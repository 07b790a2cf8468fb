//! The software MMU: page walks, shadow page tables kept per address space, and their invalidation.
//! Teaches: how a linear address becomes a physical one, and what keeping the answer correct costs.
//!
//! * `walk` follows the guest's own tables (32-bit with PSE, PAE with PDPTE registers, 4-level
//!   with 2 MiB/1 GiB pages): present and reserved bits, U/S, R/W with CR0.WP, XD with
//!   EFER.NXE, SMEP, SMAP with RFLAGS.AC, global pages, accessed and dirty bits, the exact #PF
//!   error code. `explain` shows one walk step by step.
//! * `Mmu` caches walk results in **shadow address spaces** (`shadow`): one direct-mapped table of
//!   linear page → guest frame + rights per CR3 (and PCID). A hit costs one table lookup and a
//!   mask test; anything the fast test refuses goes back to the walker, which produces the exact
//!   fault or sets the dirty bit. Pages that are not RAM (MMIO, ROM) are never cached.
//! * Shadows of earlier CR3 values are kept, so switching back to an address space finds its
//!   translations warm. Architecturally a MOV to CR3 flushes non-global TLB entries; keeping them
//!   is still correct because of **write-protect tracing** (`trace`): every guest write to a frame
//!   holding an entry some shadow was built from is checked, and exactly the shadow entries whose
//!   guest entries changed are dropped. So a retained shadow always equals what a fresh walk of
//!   the current tables would give — the one thing a TLB flush guarantees. With
//!   `ShadowConfig::retain_address_spaces = false` the MMU behaves like a plain TLB instead.
//! * INVLPG, INVPCID, and CR0/CR4/EFER changes invalidate what the SDM says they invalidate.
//!   Writes the interpreter cannot see: after a KVM run (`Stats::uncounted_runs` changed) every
//!   shadow is dropped at the next translation; device DMA must be followed by `flush_all`
//!   (`Interpreter::flush_caches` does it).

pub mod explain;
pub mod fault;
pub mod mode;
pub mod permission;
pub mod shadow;
mod trace;
pub mod walk;

pub use explain::{explain, Explanation};
pub use fault::{pf, Access, PageFault};
pub use mode::{ControlRegs, PagingGp, PagingMode};
pub use shadow::{ShadowConfig, ShadowView, SpaceView};
pub use walk::{peek_walk, walk, WalkResult};

use crate::cpu::ctl;
use crate::machine::{Machine, MmuStats, Stats};
use permission::{fast_masks, sflag};
use shadow::AddressSpace;
use trace::Tracer;

/// The interpreter's MMU: shadow address spaces, PAE PDPTE registers, write-protect tracing.
pub struct Mmu {
    config: ShadowConfig,
    /// The registers the current shadow was chosen for (compared on every translation, so
    /// state changed behind the MMU's back — another engine, a test — is noticed).
    ctx: ControlRegs,
    ctx_valid: bool,
    /// PAE paging: the four PDPTE registers loaded by the last MOV to CR3 (or CR0/CR4).
    pdptes: [u64; 4],
    spaces: Vec<AddressSpace>,
    current: usize,
    next_id: u32,
    clock: u64,
    tracer: Tracer,
    /// `Machine::memory_epoch` when last looked at: a change means guest memory (page tables
    /// included) was written where tracing could not see it (a KVM run, a debugger).
    seen_epoch: u64,
    /// Entries the walker wrote (accessed/dirty bits) since the engine last asked: a page
    /// table may share bytes with code, so cached decodes and translations must hear of it.
    pub entry_writes: Vec<(u64, u32)>,
    /// Bumped whenever a translation the MMU gave out may have stopped being valid (a walk
    /// that traced new page-table frames, a page-table write, CR3/CR0/CR4/EFER, INVLPG,
    /// INVPCID, flushes): the translator's small TLB keeps entries only while it is unchanged.
    pub generation: u64,
}

impl Default for Mmu {
    fn default() -> Self {
        Mmu::with_config(ShadowConfig::default())
    }
}

/// INVPCID invalidation types (the register operand).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InvpcidKind {
    /// Type 0: one linear address in one PCID (not global translations).
    Address,
    /// Type 1: one PCID (not global translations).
    SingleContext,
    /// Type 2: everything, global translations included.
    AllIncludingGlobal,
    /// Type 3: every PCID, not global translations.
    AllExceptGlobal,
}

impl Mmu {
    pub fn with_config(config: ShadowConfig) -> Self {
        Mmu {
            config: ShadowConfig {
                max_spaces: config.max_spaces.max(1),
                ..config
            },
            ctx: ControlRegs::default(),
            ctx_valid: false,
            pdptes: [0; 4],
            spaces: Vec::new(),
            current: 0,
            next_id: 1,
            clock: 0,
            tracer: Tracer::default(),
            seen_epoch: 0,
            entry_writes: Vec::new(),
            generation: 0,
        }
    }

    pub fn config(&self) -> ShadowConfig {
        self.config
    }

    /// Does `frame` hold page-table entries a shadow was built from? (Writes to it must pass
    /// `translate`, which notices them.)
    pub fn is_traced(&self, frame: u64) -> bool {
        self.tracer.is_traced(frame)
    }

    /// The PAE PDPTE registers (meaningful in PAE paging only).
    pub fn pdptes(&self) -> [u64; 4] {
        self.pdptes
    }

    // ANCHOR: shadow_hit
    /// Translates a linear address for `access`: a shadow hit, or a walk that fills the shadow.
    #[inline]
    pub fn translate(
        &mut self,
        machine: &mut Machine,
        linear: u64,
        access: Access,
    ) -> Result<u64, PageFault> {
        if !self.tracer.pending.is_empty() {
            self.process_pending(machine);
        }
        let cpu = &machine.cpu;
        if !self.ctx_valid
            || cpu.cr3 != self.ctx.cr3
            || cpu.cr0 != self.ctx.cr0
            || cpu.cr4 != self.ctx.cr4
            || cpu.efer != self.ctx.efer
            || machine.memory_epoch != self.seen_epoch
        {
            self.sync_context(machine);
        }
        if self.ctx.cr0 & ctl::CR0_PG == 0 {
            return Ok(linear & 0xFFFF_FFFF);
        }
        let vpage = linear >> 12;
        let e = self.spaces[self.current].entries[AddressSpace::slot(vpage)];
        if e.tag == vpage + 1 {
            let (need, deny) = fast_masks(&self.ctx, machine.cpu.rflags, access);
            if e.frame & need == need && e.frame & deny == 0 {
                machine.stats.mmu.tlb_hits += 1;
                let frame = e.frame & !0xFFF;
                if access.write && self.tracer.is_traced(frame) {
                    self.tracer.note_write(frame);
                    self.generation += 1;
                    machine.stats.mmu.pt_write_traps += 1;
                }
                return Ok(frame | (linear & 0xFFF));
            }
        }
        self.miss(machine, linear, access)
    }
    // ANCHOR_END: shadow_hit

    #[cold]
    fn miss(
        &mut self,
        machine: &mut Machine,
        linear: u64,
        access: Access,
    ) -> Result<u64, PageFault> {
        self.generation += 1;
        machine.stats.mmu.tlb_misses += 1;
        machine.stats.mmu.page_walks += 1;
        let d = walk::walk_detail(machine, Some(&self.pdptes), linear, access, true);
        if d.accessed_set + d.dirty_set != 0 {
            for step in d
                .steps
                .iter()
                .filter(|s| s.after != s.raw && !s.from_register)
            {
                self.entry_writes.push((step.entry_addr, step.size as u32));
            }
        }
        let stats = &mut machine.stats.mmu;
        stats.accessed_set += d.accessed_set as u64;
        stats.dirty_set += d.dirty_set as u64;
        let r = match d.outcome {
            Ok(r) => r,
            Err((fault, _)) => {
                stats.page_faults += 1;
                return Err(fault);
            }
        };
        let frame = r.phys & !0xFFF;
        if machine.ram.contains(frame, 4096) {
            let size_code = match r.page_size {
                0x1000 => 0,
                0x20_0000 => 1,
                0x40_0000 => 2,
                _ => 3,
            };
            let flags = if r.user { sflag::USER } else { 0 }
                | if r.writable { sflag::WRITABLE } else { 0 }
                | if r.executable { sflag::EXEC } else { 0 }
                | if r.dirty { sflag::DIRTY } else { 0 }
                | if r.global { sflag::GLOBAL } else { 0 }
                | size_code << sflag::SIZE_SHIFT;
            let space = &mut self.spaces[self.current];
            space.fill(linear >> 12, frame | flags);
            machine.stats.mmu.shadow_fills += 1;
            if !self.tracer.record(&machine.ram, space.id, linear, &d.steps) {
                self.drop_all(&mut machine.stats.mmu, Cause::Other);
                self.select_space(machine, true);
            }
        } else {
            machine.stats.mmu.mmio_bypass += 1;
        }
        if access.write && self.tracer.is_traced(frame) {
            self.tracer.note_write(frame);
            self.generation += 1;
            machine.stats.mmu.pt_write_traps += 1;
        }
        Ok(r.phys)
    }

    /// Did a write hit a page-table frame a shadow entry was built from, not yet compared?
    /// (The next translation compares; until then translations cached elsewhere — the
    /// translator's blocks and chain links — may be stale.)
    pub fn page_table_written(&self) -> bool {
        !self.tracer.pending.is_empty()
    }

    /// Write-protect tracing: drop the shadow entries whose guest entries were just rewritten.
    fn process_pending(&mut self, machine: &mut Machine) {
        self.generation += 1;
        for dep in self.tracer.take_changes(&machine.ram) {
            if let Some(space) = self.spaces.iter_mut().find(|s| s.id == dep.space) {
                machine.stats.mmu.inval_pt_write += space.invalidate_region(dep.base, dep.shift);
            }
        }
    }

    /// The CPU's paging registers changed without a hook (start of a run, another engine, a
    /// test): adopt them, dropping everything if the walk semantics changed.
    fn sync_context(&mut self, machine: &mut Machine) {
        self.generation += 1;
        if machine.memory_epoch != self.seen_epoch {
            // Another engine ran the guest since (or a debugger wrote it): nothing cached
            // can be trusted.
            self.seen_epoch = machine.memory_epoch;
            self.drop_all(&mut machine.stats.mmu, Cause::Other);
            self.ctx_valid = false;
        }
        let new = ControlRegs::of(&machine.cpu);
        if !self.ctx_valid || new.walk_semantics() != self.ctx.walk_semantics() {
            self.drop_all(&mut machine.stats.mmu, Cause::ModeChange);
            self.ctx = new;
            self.ctx_valid = true;
            if new.mode() == PagingMode::Pae {
                self.pdptes = mode::load_pdptes(machine, new.cr3).unwrap_or([0; 4]);
            }
            if new.mode() != PagingMode::Off {
                self.select_space(machine, true);
            }
            return;
        }
        let cr3_changed = new.cr3 != self.ctx.cr3;
        self.ctx = new;
        if cr3_changed && new.mode() != PagingMode::Off {
            if new.mode() == PagingMode::Pae {
                self.pdptes = mode::load_pdptes(machine, new.cr3).unwrap_or([0; 4]);
            }
            self.select_space(machine, false);
        }
    }

    /// Makes the space for the current CR3 (and PCID) current: reuse, create or (plain-TLB
    /// mode) flush. `noflush`: a MOV to CR3 with bit 63 set under PCIDE, or no CR3 write at all.
    fn select_space(&mut self, machine: &mut Machine, noflush: bool) {
        let root = self.ctx.root();
        let pcid = self.ctx.pcid();
        let retain = self.config.retain_address_spaces;
        let stats = &mut machine.stats.mmu;
        self.clock += 1;
        let found = self
            .spaces
            .iter()
            .position(|s| s.pcid == pcid && (!retain || s.root == root));
        let index = match found {
            Some(i) => {
                let space = &mut self.spaces[i];
                if retain {
                    stats.space_reuses += 1;
                    if space.pdptes != self.pdptes {
                        // PAE: the PDPTE registers were reloaded with other values.
                        stats.inval_cr3 += space.flush(false);
                    }
                } else if !noflush {
                    stats.inval_cr3 += space.flush(self.ctx.pge());
                }
                space.root = root;
                i
            }
            None => {
                stats.spaces_created += 1;
                let space = AddressSpace::new(self.next_id, root, pcid, self.pdptes);
                self.next_id += 1;
                if self.spaces.len() < self.config.max_spaces {
                    self.spaces.push(space);
                    self.spaces.len() - 1
                } else {
                    let lru = (0..self.spaces.len())
                        .min_by_key(|&i| self.spaces[i].last_used)
                        .expect("max_spaces >= 1");
                    stats.spaces_evicted += 1;
                    stats.inval_cr3 += self.spaces[lru].live as u64;
                    self.spaces[lru] = space;
                    lru
                }
            }
        };
        self.spaces[index].pdptes = self.pdptes;
        self.spaces[index].last_used = self.clock;
        self.current = index;
    }

    fn drop_all(&mut self, stats: &mut MmuStats, cause: Cause) {
        self.generation += 1;
        let live: u64 = self.spaces.iter().map(|s| s.live as u64).sum();
        if !self.spaces.is_empty() {
            stats.flushes += 1;
        }
        match cause {
            Cause::ModeChange => stats.inval_mode_change += live,
            Cause::Other => stats.inval_other += live,
        }
        self.spaces.clear();
        self.current = 0;
        self.tracer.clear();
    }

    /// MOV to CR3. Checks reserved bits, loads the PAE PDPTEs (#GP if they are malformed; CR3
    /// is then unchanged), and switches the shadow. With CR4.PCIDE, bit 63 means "no flush".
    pub fn write_cr3(&mut self, machine: &mut Machine, value: u64) -> Result<(), PagingGp> {
        self.generation += 1;
        self.process_pending(machine);
        let regs = ControlRegs::of(&machine.cpu);
        let mut v = value;
        let mut noflush = false;
        if regs.efer & ctl::EFER_LMA != 0 {
            if regs.pcide() {
                noflush = v >> 63 != 0;
                v &= !(1 << 63);
            }
            if v >> mode::PHYS_ADDR_BITS != 0 {
                return Err(PagingGp::ReservedCr3(value));
            }
        } else {
            v &= 0xFFFF_FFFF;
        }
        if regs.mode() == PagingMode::Pae {
            self.pdptes = mode::load_pdptes(machine, v)?;
        }
        machine.cpu.cr3 = v;
        machine.stats.mmu.cr3_writes += 1;
        let new = ControlRegs::of(&machine.cpu);
        if !self.ctx_valid || new.walk_semantics() != self.ctx.walk_semantics() {
            self.sync_context(machine);
            return Ok(());
        }
        self.ctx = new;
        if new.mode() != PagingMode::Off {
            self.select_space(machine, noflush);
        }
        Ok(())
    }

    /// CR0, CR4 or EFER changed (from `old`). Applies the paging rules: #GP cases (the
    /// registers are then restored to `old`), PDPTE loads, and the invalidations the SDM lists.
    pub fn control_changed(
        &mut self,
        machine: &mut Machine,
        old: ControlRegs,
    ) -> Result<(), PagingGp> {
        self.generation += 1;
        self.process_pending(machine);
        let new = ControlRegs::of(&machine.cpu);
        let restore = |m: &mut Machine| {
            m.cpu.cr0 = old.cr0;
            m.cpu.cr4 = old.cr4;
            m.cpu.efer = old.efer;
        };
        if new.pcide() && !old.pcide() && (new.efer & ctl::EFER_LMA == 0 || new.cr3 & 0xFFF != 0) {
            restore(machine);
            return Err(PagingGp::PcideNotAllowed);
        }
        if new.pcide() && new.cr0 & ctl::CR0_PG == 0 {
            restore(machine);
            return Err(PagingGp::PagingOffWithPcide);
        }
        let pdpte_bits = ctl::CR4_PAE | ctl::CR4_PSE | ctl::CR4_PGE | ctl::CR4_SMEP;
        if new.mode() == PagingMode::Pae
            && (old.mode() != PagingMode::Pae || (old.cr4 ^ new.cr4) & pdpte_bits != 0)
        {
            match mode::load_pdptes(machine, new.cr3) {
                Ok(p) => self.pdptes = p,
                Err(e) => {
                    restore(machine);
                    return Err(e);
                }
            }
        }
        if !self.ctx_valid || new.walk_semantics() != old.walk_semantics() {
            self.ctx_valid = false;
            self.sync_context(machine);
            return Ok(());
        }
        // CR4.SMEP 0 → 1 flushes the current PCID (SDM 4.10.4.1); WP and SMAP need nothing
        // because the shadow keeps raw rights and checks them against the current bits.
        if new.smep() && !old.smep() && !self.spaces.is_empty() {
            let n = self.spaces[self.current].flush(false);
            machine.stats.mmu.inval_mode_change += n;
        }
        self.ctx = new;
        Ok(())
    }

    // ANCHOR: pv_entry_written
    /// A paravirtual batch (HC_MMU_UPDATE) wrote the entry at guest-physical `addr`. If a
    /// shadow was built from that frame, the changed entries' shadow entries are dropped
    /// before the next translation — what a write-protect trap would have achieved, without
    /// the trap. Returns whether the frame was traced (a trap avoided).
    pub fn pv_entry_written(&mut self, addr: u64) -> bool {
        let frame = addr & !0xFFF;
        if !self.tracer.is_traced(frame) {
            return false;
        }
        self.tracer.note_write(frame);
        self.generation += 1;
        true
    }
    // ANCHOR_END: pv_entry_written

    /// A device wrote guest RAM in the frame of `addr` (DMA): as [`Mmu::pv_entry_written`], so
    /// a shadow built from a rewritten page table is not used again unchecked.
    pub fn device_wrote_frame(&mut self, addr: u64) {
        self.pv_entry_written(addr);
    }

    /// INVLPG: drops the translation of one linear page — in every retained space, and global
    /// entries too (a plain TLB drops the current PCID's entry and every global one).
    pub fn invlpg(&mut self, stats: &mut Stats, linear: u64) {
        self.generation += 1;
        let vpage = linear >> 12;
        let current = self.current;
        let retain = self.config.retain_address_spaces;
        for (i, space) in self.spaces.iter_mut().enumerate() {
            let keep_global = !retain && i != current;
            stats.mmu.inval_invlpg += space.invalidate_guest_page(vpage, keep_global);
        }
    }

    /// INVPCID of the given kind (the caller has checked the descriptor).
    pub fn invpcid(&mut self, stats: &mut Stats, kind: InvpcidKind, pcid: u16, linear: u64) {
        self.generation += 1;
        let n: u64 = self
            .spaces
            .iter_mut()
            .map(|s| match kind {
                InvpcidKind::Address if s.pcid == pcid => {
                    s.invalidate_guest_page(linear >> 12, true)
                }
                InvpcidKind::SingleContext if s.pcid == pcid => s.flush(true),
                InvpcidKind::AllIncludingGlobal => s.flush(false),
                InvpcidKind::AllExceptGlobal => s.flush(true),
                _ => 0,
            })
            .sum();
        stats.mmu.inval_invpcid += n;
    }

    /// Drops every shadow: guest memory may have changed where tracing could not see it
    /// (another engine ran, a device wrote by DMA).
    pub fn flush_all(&mut self, stats: &mut Stats) {
        self.generation += 1;
        self.drop_all(&mut stats.mmu, Cause::Other);
        self.ctx_valid = false;
    }

    /// Forgets every cached translation (kept for callers of the first MMU; `keep_global` is
    /// accepted for compatibility: everything is dropped, which is always allowed).
    pub fn flush(&mut self, stats: &mut Stats, _keep_global: bool) {
        self.generation += 1;
        self.flush_all(stats);
    }

    /// The shadow address spaces and their entries, current first.
    pub fn spaces(&self) -> Vec<SpaceView> {
        let mut v: Vec<SpaceView> = self
            .spaces
            .iter()
            .enumerate()
            .map(|(i, s)| s.view(i == self.current && self.ctx_valid))
            .collect();
        v.sort_by_key(|s| (!s.current, s.id));
        v
    }

    /// (frames holding traced page-table entries, recorded dependencies).
    pub fn tracing_footprint(&self) -> (usize, usize) {
        (self.tracer.frames_traced(), self.tracer.dependencies())
    }

    /// Explains a walk of `linear` under the current CPU state, with this MMU's PDPTE registers.
    pub fn explain(&self, machine: &mut Machine, linear: u64, access: Access) -> Explanation {
        let pdptes = (self.ctx_valid && self.ctx.cr3 == machine.cpu.cr3).then_some(self.pdptes);
        explain::explain_with(machine, pdptes, linear, access)
    }
}

#[derive(Clone, Copy)]
enum Cause {
    ModeChange,
    Other,
}

/// Reads guest memory at a linear address without side effects (no A/D bits, no shadow fill),
/// as a debugger does. Returns the linear address that failed to translate on error.
pub fn peek_linear(machine: &mut Machine, linear: u64, out: &mut [u8]) -> Result<(), u64> {
    for (i, byte) in out.iter_mut().enumerate() {
        let lin = linear.wrapping_add(i as u64);
        let phys = if machine.cpu.paging_enabled() {
            peek_walk(machine, lin, Access::read(false))
                .map_err(|_| lin)?
                .phys
        } else {
            lin & 0xFFFF_FFFF
        };
        *byte = machine.phys_read(phys, 1) as u8;
    }
    Ok(())
}

#[cfg(test)]
mod tests;
